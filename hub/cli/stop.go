package cli

import "time"

// How long `hub serve` takes to stop after SIGTERM, at most: /healthz
// answers 503 at once (a load balancer stops sending agents), HTTP
// requests finish within httpShutdown, then live sync connections finish
// the batches they hold within syncDrain. A service manager must wait
// longer than both before it kills: deploy/numeribus-hub.service's
// TimeoutStopSec (TestSystemdUnit).
const (
	httpShutdown = 5 * time.Second
	syncDrain    = 10 * time.Second
)
