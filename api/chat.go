package api

import (
	"errors"
	"strings"
)

// PlainTemplate renders a chat for a model that has no chat template of its own (the
// llama2.c story models): the messages' texts in order, joined by one newline, roles not
// written. A base model continues text, so a chat of one user message is the completion
// of that message's text. It fails on an empty chat.
func PlainTemplate(msgs []Message) (string, error) {
	if len(msgs) == 0 {
		return "", errors.New("no messages")
	}
	var b strings.Builder
	for i, m := range msgs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(m.Content)
	}
	return b.String(), nil
}
