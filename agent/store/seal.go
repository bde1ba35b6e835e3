package store

import (
	"encoding/binary"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// Associated data binds each sealed body to its place: a body copied into
// another row, table or kind fails to open.

func recordAD(k domain.Kind, id ident.ID) []byte {
	b := make([]byte, 0, 8+len(k)+1+16)
	b = append(b, "records\x00"...)
	b = append(b, k...)
	b = append(b, 0)
	return append(b, id[:]...)
}

func changeAD(k domain.Kind, id ident.ID, seq uint64) []byte {
	b := make([]byte, 0, 8+len(k)+1+16+8)
	b = append(b, "changes\x00"...)
	b = append(b, k...)
	b = append(b, 0)
	b = append(b, id[:]...)
	return binary.BigEndian.AppendUint64(b, seq)
}
