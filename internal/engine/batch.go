package engine

// MaxBatch is the most requests one JSON-RPC batch may hold: geth's default
// (node.Config.BatchRequestLimit), which its engine port applies too.
const MaxBatch = 1000

// IsBatch reports whether body is a JSON array: its first byte that is not
// whitespace is '['.
func IsBatch(body []byte) bool {
	s := scanner{buf: body}
	return s.next() == '['
}

// SplitBatch reads the JSON-RPC batch body (an array of requests) and returns
// its elements in order, each a sub-slice of body without the whitespace
// around it, and n, how many elements the batch holds. Only the first limit
// elements are returned, so the memory a hostile batch of tiny elements costs
// is bounded by limit, not by its length; the whole body is still checked.
//
// The elements themselves are not inspected: each is a request of its own
// (see [Inspect]). The error is an *Error: CodeParseError when body is not one
// well-formed JSON value, CodeInvalidRequest when it is not an array, nests
// deeper than [MaxDepth], or is empty (geth's "empty batch"). A batch longer
// than limit is not an error here: the caller answers it (n > limit).
func SplitBatch(body []byte, limit int) (elems [][]byte, n int, err error) {
	elems, n, e := splitBatch(body, limit)
	if e != nil {
		return nil, 0, e
	}
	return elems, n, nil
}

func splitBatch(body []byte, limit int) ([][]byte, int, *Error) {
	s := scanner{buf: body}
	switch c := s.next(); {
	case s.atEOF():
		return nil, 0, errParse("empty body")
	case c != '[':
		if err := wellFormed(body); err != nil {
			return nil, 0, err
		}
		return nil, 0, errRequest("not a batch")
	}
	var elems [][]byte
	n := 0
	err := s.array(0, func(int) *Error {
		start := s.pos
		if err := s.skip(1); err != nil {
			return err
		}
		if n < limit {
			elems = append(elems, body[start:s.pos:s.pos])
		}
		n++
		return nil
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return nil, 0, err
	}
	if n == 0 {
		return nil, 0, errRequest("empty batch")
	}
	return elems, n, nil
}
