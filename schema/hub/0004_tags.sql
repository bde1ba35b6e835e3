-- Hub store, version 4: one logged change per device seq.
-- The divergence checks (docs/PROTOCOL.md) look up a device's change by
-- its seq; the unique index also makes two writers that both try to log
-- one device seq (two hub instances, a retry racing its original) fail
-- instead of logging it twice.
CREATE UNIQUE INDEX changes_device_dseq ON changes(device, dseq);
