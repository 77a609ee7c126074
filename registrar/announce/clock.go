package announce

import "time"

// clock is the time the health check's schedule runs on: the wall clock
// in production, one a test advances by hand.
type clock interface {
	// Now is the current time.
	Now() time.Time
	// After sends the time on its channel once d has passed.
	After(d time.Duration) <-chan time.Time
}

// wallClock is the clock of package time.
type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
