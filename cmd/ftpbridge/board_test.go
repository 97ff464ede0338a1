package main

import "testing"

func TestLocateBoard(t *testing.T) {
	board := serialPort{Name: "/dev/ttyACM0", VID: "2e8a", PID: "0005", Serial: "E6614C311B4A"}
	other := serialPort{Name: "/dev/ttyACM1", VID: "2e8a", PID: "0005", Serial: "0000AAAA"}
	tests := []struct {
		name     string
		start    []serialPort // what the system lists at start
		now      []serialPort // and later
		present  string       // the device node that exists later, if any
		want     string
		wantSeen bool
	}{
		{"same path", []serialPort{board}, []serialPort{board}, "/dev/ttyACM0", "/dev/ttyACM0", true},
		{"gone", []serialPort{board}, nil, "", "", false},
		{"new path, same serial", []serialPort{board}, []serialPort{other, {Name: "/dev/ttyACM2", VID: "2e8a", PID: "0005", Serial: "E6614C311B4A"}}, "", "/dev/ttyACM2", true},
		{"another board at a new path", []serialPort{board}, []serialPort{other}, "", "", false},
		{"no serial number: the path only", []serialPort{{Name: "/dev/ttyACM0", VID: "2e8a", PID: "0005"}}, []serialPort{{Name: "/dev/ttyACM3", VID: "2e8a", PID: "0005"}}, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listed := tt.start
			b := newBoardPort("/dev/ttyACM0", func() ([]serialPort, error) { return listed, nil })
			b.exists = func(p string) bool { return p == tt.present }
			listed = tt.now
			got, ok := b.locate()
			if got != tt.want || ok != tt.wantSeen {
				t.Errorf("locate() = %q, %v, want %q, %v", got, ok, tt.want, tt.wantSeen)
			}
		})
	}
}
