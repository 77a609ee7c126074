package machinessh

import (
	"strconv"
	"strings"
)

// JournalCommand is the remote command that prints the last lines of the
// units' journal, merged by time (journalctl -u A -u B), and with follow
// keeps printing new lines. Every argument is quoted for the remote shell.
func JournalCommand(units []string, lines int, follow bool) string {
	args := []string{"journalctl", "--no-pager"}
	for _, u := range units {
		args = append(args, "-u", u)
	}
	args = append(args, "-n", strconv.Itoa(lines))
	if follow {
		args = append(args, "-f")
	}
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// Quote makes s one word for a POSIX shell: as it is when it holds only
// characters no shell treats specially, else in single quotes.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
