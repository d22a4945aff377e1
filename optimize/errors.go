package optimize

import "errors"

// ErrNoHistory means there is nothing recorded to forecast from: the API
// answers it with 404.
var ErrNoHistory = errors.New("no history")

// ErrShortHistory means there is history, but too little to fit a model
// yet: every new policy starts so, and its floor scales it meanwhile, so it
// is not an error worth logging as one.
var ErrShortHistory = errors.New("history too short to forecast")
