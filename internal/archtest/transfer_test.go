package archtest

// internal/bundle, the format of the files a USB stick carries, does no
// I/O of its own: it reads and writes the streams it is given (kept in a
// file of its own, so that the list above stays one line to merge).
func init() { pure = append(pure, "bundle") }
