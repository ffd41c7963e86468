package docker

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestVersionLess(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"1.41", "1.44", true}, {"1.44", "1.41", false}, {"1.44", "1.44", false},
		{"1.9", "1.41", true}, {"2.0", "1.99", false},
	}
	for _, tt := range tests {
		if got := VersionLess(tt.a, tt.b); got != tt.want {
			t.Errorf("VersionLess(%s, %s) = %t", tt.a, tt.b, got)
		}
	}
}

func frame(stream byte, s string) []byte {
	h := make([]byte, 8)
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(s)))
	return append(h, s...)
}

func TestDemux(t *testing.T) {
	var in bytes.Buffer
	in.Write(frame(1, "out1 "))
	in.Write(frame(2, "err1"))
	in.Write(frame(1, "out2"))
	var out, errb bytes.Buffer
	if err := demux(&in, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if out.String() != "out1 out2" || errb.String() != "err1" {
		t.Errorf("stdout %q stderr %q", out.String(), errb.String())
	}
	trunc := bytes.NewReader(frame(1, "abc")[:9])
	if err := demux(trunc, &out, &errb); err == nil {
		t.Error("a truncated frame must be an error")
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 4}
	b.Write([]byte("abc"))
	b.Write([]byte("defg"))
	if string(b.Bytes()) != "defg" {
		t.Errorf("%q", b.Bytes())
	}
}
