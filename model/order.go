package model

import (
	"fmt"
	"strconv"
	"strings"
)

// Order is a SARIMAX order (p,d,q)(P,D,Q,s). The zero seasonal part means no
// seasonal component.
type Order struct {
	P  int `json:"p"`
	D  int `json:"d"`
	Q  int `json:"q"`
	SP int `json:"sp,omitempty"`
	SD int `json:"sd,omitempty"`
	SQ int `json:"sq,omitempty"`
	S  int `json:"s,omitempty"`
}

// DefaultOrders are the candidates tried when none are configured.
func DefaultOrders() []Order {
	return []Order{{P: 1, D: 1, Q: 1}, {P: 1, Q: 1}, {P: 2, D: 1, Q: 1}, {P: 1, D: 1}}
}

// String renders "p,d,q" or "p,d,q,P,D,Q,s"; ParseOrders reads both.
func (o Order) String() string {
	if o.seasonal() {
		return fmt.Sprintf("%d,%d,%d,%d,%d,%d,%d", o.P, o.D, o.Q, o.SP, o.SD, o.SQ, o.S)
	}
	return fmt.Sprintf("%d,%d,%d", o.P, o.D, o.Q)
}

func (o Order) seasonal() bool { return o.S > 0 && (o.SP > 0 || o.SD > 0 || o.SQ > 0) }

// MaxStates bounds an order's state vector (p + s*P or q + s*Q + 1, plus
// d + s*D): the Kalman filter holds matrices of its square, so a 1,000
// states take 8 MB each, and a long season belongs in Fourier terms or the
// last-cycle regressor (a policy's seasonality), not in seasonal orders.
const MaxStates = 1000

// Validate rejects negative orders, seasonal terms without a period and
// orders whose state would pass MaxStates.
func (o Order) Validate() error {
	for _, v := range []int{o.P, o.D, o.Q, o.SP, o.SD, o.SQ, o.S} {
		if v < 0 {
			return fmt.Errorf("order %s: negative term", o)
		}
		// Checked before the products below, which could overflow.
		if v > MaxStates {
			return fmt.Errorf("order %s: term %d exceeds %d", o, v, MaxStates)
		}
	}
	if (o.SP > 0 || o.SD > 0 || o.SQ > 0) && o.S < 2 {
		return fmt.Errorf("order %s: seasonal terms need a period of at least 2", o)
	}
	if k := newSpec(o, 0).kStates; k > MaxStates {
		return fmt.Errorf("order %s: %d states, more than %d (model a long season with seasonality instead)", o, k, MaxStates)
	}
	return nil
}

// ParseOrders reads candidates separated by ";", each "p,d,q" or
// "p,d,q,P,D,Q,s".
func ParseOrders(s string) ([]Order, error) {
	var out []Order
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		fields := strings.Split(part, ",")
		if len(fields) != 3 && len(fields) != 7 {
			return nil, fmt.Errorf("order %q: want p,d,q or p,d,q,P,D,Q,s", part)
		}
		v := make([]int, 7)
		for i, f := range fields {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return nil, fmt.Errorf("order %q: %w", part, err)
			}
			v[i] = n
		}
		o := Order{P: v[0], D: v[1], Q: v[2], SP: v[3], SD: v[4], SQ: v[5], S: v[6]}
		if err := o.Validate(); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no orders in %q", s)
	}
	return out, nil
}

// MinObs is the shortest series Fit accepts for the order with kExog exog
// columns.
func (o Order) MinObs(kExog int) int { return newSpec(o, kExog).minObs() }

// Ints renders the order as [p,d,q], or [p,d,q,P,D,Q,s] when seasonal.
func (o Order) Ints() []int {
	if o.seasonal() {
		return []int{o.P, o.D, o.Q, o.SP, o.SD, o.SQ, o.S}
	}
	return []int{o.P, o.D, o.Q}
}
