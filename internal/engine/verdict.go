package engine

import "encoding/json"

// ForkchoiceResponse returns a forkchoiceUpdated answer with the given payload status and no
// payload id: what the proxy tells a beacon node whose update it did not forward, when the
// ELs already gave a final verdict on the same head. lvh is written as null when nil.
func ForkchoiceResponse(id json.RawMessage, status Status, lvh *Hash) []byte {
	buf := make([]byte, 0, 160)
	buf = append(buf, `{"payloadStatus":{"status":"`...)
	buf = append(buf, status...)
	buf = append(buf, `","latestValidHash":`...)
	if lvh == nil {
		buf = append(buf, "null"...)
	} else {
		buf = append(buf, '"')
		buf = lvh.appendHex(buf)
		buf = append(buf, '"')
	}
	buf = append(buf, `,"validationError":null},"payloadId":null}`...)
	return ResultResponse(id, buf)
}
