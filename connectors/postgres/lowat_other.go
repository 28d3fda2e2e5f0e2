//go:build !linux

package postgres

import "errors"

// setRcvLowat refuses: only Linux is known to honour the mark in poll, so
// elsewhere the stream reads as the messages arrive.
func setRcvLowat(uintptr, int) error {
	return errors.New("SO_RCVLOWAT is used on Linux only")
}
