package model

import (
	"strings"
	"testing"
)

// A seasonal order whose state is huge (or whose s*P overflows int) was
// accepted by ParseOrders, with which a policy's orders are validated, and
// then ran out of memory or panicked in the fit, inside Select's goroutine:
// the whole daemon went down. It is refused up front instead.
func TestOrdersWhoseStateIsTooLargeAreRefusedBeforeAnyFit(t *testing.T) {
	for _, tc := range []struct {
		orders string
		want   string // "" when accepted
	}{
		{"1,0,0,2,0,0,4611686018427387904", "exceeds"},
		{"1,0,0,1,0,0,2000", "exceeds"},
		{"1,0,0,2,0,0,600", "more than 1000"},
		{"1,1,1,1,1,1,24", ""},
		{"2,1,1", ""},
	} {
		_, err := ParseOrders(tc.orders)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want it accepted", tc.orders, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want one saying %q", tc.orders, err, tc.want)
		}
	}
}
