package loadgen

import (
	"bytes"
	"fmt"
)

// maxLine bounds one line of an event stream; a longer line is a malformed stream.
const maxLine = 1 << 20

// sseParser splits a server-sent event stream (the WHATWG "text/event-stream" format)
// into the data of its events, fed in pieces split anywhere. It keeps only "data" fields:
// several data lines of one event join with "\n"; comments and other fields are skipped.
// Lines end in "\n", "\r\n" or "\r"; a blank line dispatches the event, and an event with
// no data line is not dispatched. The zero value is ready to use.
type sseParser struct {
	line    []byte // the current line, not yet terminated
	data    []byte // the data of the current event, each line followed by "\n"
	afterCR bool   // the last byte fed ended a line with "\r": a "\n" next ends nothing
}

// feed parses p, calling emit with the data of each event that p completes, in order.
// The slice passed to emit is valid only during the call. An error of emit stops the
// parse and is returned.
func (s *sseParser) feed(p []byte, emit func(data []byte) error) error {
	for len(p) > 0 {
		if s.afterCR && p[0] == '\n' {
			p = p[1:]
			s.afterCR = false
			continue
		}
		s.afterCR = false
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			if len(s.line)+len(p) > maxLine {
				return fmt.Errorf("%w: event stream line longer than %d bytes", ErrStream, maxLine)
			}
			s.line = append(s.line, p...)
			return nil
		}
		var line []byte
		if len(s.line) == 0 {
			line = p[:i] // the whole line is in p: no copy
		} else {
			s.line = append(s.line, p[:i]...)
			line = s.line
		}
		s.afterCR = p[i] == '\r'
		p = p[i+1:]
		err := s.processLine(line, emit)
		s.line = s.line[:0]
		if err != nil {
			return err
		}
	}
	return nil
}

// processLine interprets one complete line.
func (s *sseParser) processLine(line []byte, emit func(data []byte) error) error {
	if len(line) == 0 {
		if len(s.data) == 0 {
			return nil
		}
		data := s.data[:len(s.data)-1] // drop the last line's "\n"
		s.data = s.data[:0]
		return emit(data)
	}
	if line[0] == ':' {
		return nil // comment
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	if string(field) == "data" {
		if len(s.data)+len(value) > maxLine {
			return fmt.Errorf("%w: event data longer than %d bytes", ErrStream, maxLine)
		}
		s.data = append(s.data, value...)
		s.data = append(s.data, '\n')
	}
	return nil
}
