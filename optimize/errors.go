package optimize

import "errors"

// ErrNoHistory means there is nothing recorded to forecast from: the API
// answers it with 404.
var ErrNoHistory = errors.New("no history")
