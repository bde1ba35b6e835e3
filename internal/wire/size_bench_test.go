package wire

import "testing"

// EncodedSize runs for every change put in a push: by hand against
// encoding the change with the library.
func BenchmarkEncodedSize(b *testing.B) {
	p := pushSample(b)
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range p.Changes {
				_ = EncodedSize(&p.Changes[i])
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range p.Changes {
				if _, err := encMode.Marshal(&p.Changes[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
