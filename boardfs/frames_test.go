package boardfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// flatFrame is the most data one of the micro:bit's _x frames carries (its
// reads of 64 bytes).
const flatFrame = 64

// encodeFrames is what the board's _r helper sends for data (the
// micro:bit's _x with checkSum).
func encodeFrames(data []byte, check frameCheck) []byte {
	frame := maxFrame
	if check == checkSum {
		frame = flatFrame
	}
	var out []byte
	for rest := data; len(rest) > 0; {
		k := min(len(rest), frame)
		out = binary.BigEndian.AppendUint16(out, uint16(k))
		out = append(out, rest[:k]...)
		out = binary.BigEndian.AppendUint32(out, check.of(rest[:k]))
		rest = rest[k:]
	}
	out = append(out, 0, 0)
	return binary.BigEndian.AppendUint32(out, uint32(len(data)))
}

func TestDecodeFrames(t *testing.T) {
	data := bytes.Repeat([]byte("\x00\x04\x03\r\n>OK"), 400)
	for _, check := range []frameCheck{checkCRC32, checkSum} {
		good := encodeFrames(data, check)
		first := maxFrame // the data of the first frame
		if check == checkSum {
			first = flatFrame
		}
		tests := []struct {
			name    string
			wire    []byte
			want    []byte
			wantErr error
		}{
			{"whole", good, data, nil},
			{"empty file", encodeFrames(nil, check), nil, nil},
			{"helper raised", []byte{ctrlD}, nil, errNoFrames},
			{"frame too long", []byte{0x03, 0xe9}, nil, errLostFraming},
			{"data bit flipped", flip(good, 100), data[:0], ErrCorrupt},
			{"check bit flipped", flip(good, 2+first+3), data[:0], ErrCorrupt},
			{"length damaged into an early end", append([]byte{0, 0, 0, 0, 0x0c, 0x80}, good[2:]...), nil, ErrCorrupt},
			{"count damaged", flip(good, len(good)-1), data, ErrCorrupt},
			{"cut short", good[:500], data[:0], errors.New("EOF")},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/check%d", tt.name, check), func(t *testing.T) {
				var out bytes.Buffer
				n, err := decodeFrames(bytes.NewReader(tt.wire), &out, check, 0)
				switch {
				case tt.wantErr == nil && err != nil:
					t.Fatalf("decodeFrames = %d, %v, want no error", n, err)
				case tt.wantErr != nil && err == nil:
					t.Fatalf("decodeFrames = %d, nil, want %v", n, tt.wantErr)
				case tt.wantErr != nil && tt.wantErr.Error() != "EOF" && !errors.Is(err, tt.wantErr):
					t.Fatalf("decodeFrames = %d, %v, want %v", n, err, tt.wantErr)
				}
				if err == nil && !bytes.Equal(out.Bytes(), tt.want) {
					t.Errorf("decodeFrames wrote %d bytes, want %d", out.Len(), len(tt.want))
				}
				if int64(out.Len()) != n {
					t.Errorf("decodeFrames wrote %d bytes, said %d", out.Len(), n)
				}
			})
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x10
	return c
}

// FuzzDecodeFrames: one flipped bit anywhere in a download's frames, under
// either check, never gives a wrong segment without an error, and no input
// panics the decoder.
func FuzzDecodeFrames(f *testing.F) {
	f.Add([]byte("print('hello')\n"), uint(3), uint8(0), false)
	f.Add(bytes.Repeat([]byte{0x04, 0x00, 0x03}, 900), uint(1001), uint8(7), true)
	f.Add([]byte{}, uint(1), uint8(1), false)
	f.Fuzz(func(t *testing.T, data []byte, at uint, bit uint8, sum bool) {
		check := checkCRC32
		if sum {
			check = checkSum
		}
		wire := encodeFrames(data, check)
		var out bytes.Buffer
		if _, err := decodeFrames(bytes.NewReader(wire), &out, check, 0); err != nil || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("clean frames of %d bytes: %d bytes, %v", len(data), out.Len(), err)
		}
		wire[at%uint(len(wire))] ^= 1 << (bit % 8)
		out.Reset()
		r := bytes.NewReader(wire)
		_, err := decodeFrames(r, &out, check, 0)
		if err == nil && r.Len() > 0 {
			// readRange takes output after the end frame for damage: a
			// length flipped into an early end leaves the rest behind.
			err = ErrCorrupt
		}
		if err == nil && !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("bit %d of byte %d flipped: %d wrong bytes and no error", bit%8, at%uint(len(wire)), out.Len())
		}
		// The raw input as a reply: anything but a panic is fine.
		_, _ = decodeFrames(bytes.NewReader(data), &out, check, 0)
	})
}
