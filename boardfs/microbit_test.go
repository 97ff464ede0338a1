package boardfs

import (
	"strings"
	"testing"
)

func TestSplitDefs(t *testing.T) {
	parts := splitDefs(flatHelpers, 400)
	if len(parts) < 2 {
		t.Fatalf("splitDefs gave %d part(s) of the %d-byte helpers", len(parts), len(flatHelpers))
	}
	if strings.Join(parts, "") != flatHelpers {
		t.Error("the parts do not add up to the helpers")
	}
	for i, p := range parts {
		if i > 0 && !strings.HasPrefix(p, "def ") {
			t.Errorf("part %d starts inside a function: %.30q", i, p)
		}
		if len(p) > 400 && strings.Count(p, "\ndef ") > 0 {
			t.Errorf("part %d is %d bytes and could have been cut", i, len(p))
		}
	}
	if got := splitDefs("def a():\n pass\n", 4); len(got) != 1 {
		t.Errorf("one long def cut into %d parts", len(got))
	}
}
