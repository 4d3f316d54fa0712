package gitserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
)

// pkt-line framing (gitprotocol-common):
//
//	pkt-line     = pkt-len pkt-payload
//	pkt-len      = 4 lowercase hex digits, the length of the whole line
//	               including the 4 length bytes
//	0000         flush-pkt: end of a list or a message
//	0001         delim-pkt: separates sections (protocol v2)
//	0002         response-end-pkt: end of a stateless response (protocol v2)
//
// A payload holds at most maxPktPayload bytes (65520 - 4). Text lines end
// with "\n", which readers strip.

const (
	maxPktLen     = 65520
	maxPktPayload = maxPktLen - 4
	// maxBandPayload is the most one side-band-64k packet carries after its
	// band byte.
	maxBandPayload = maxPktPayload - 1
)

// pktKind says what a read pkt-line was.
type pktKind int

const (
	pktData pktKind = iota
	pktFlush
	pktDelim
	pktResponseEnd
)

func (k pktKind) String() string {
	switch k {
	case pktData:
		return "data"
	case pktFlush:
		return "flush"
	case pktDelim:
		return "delim"
	case pktResponseEnd:
		return "response-end"
	}
	return fmt.Sprintf("pktKind(%d)", int(k))
}

// errBadPktLine is a malformed pkt-line header.
var errBadPktLine = errors.New("gitserver: malformed pkt-line")

// pktReader reads pkt-lines from a buffered stream. The same bufio.Reader
// is handed on to pack ingestion, so no byte after the last pkt-line is lost.
type pktReader struct {
	r   *bufio.Reader
	buf []byte
}

func newPktReader(r io.Reader) *pktReader {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < maxPktLen {
		br = bufio.NewReaderSize(r, maxPktLen)
	}
	return &pktReader{r: br}
}

// next reads one pkt-line. For pktData the payload is returned as is (the
// slice is valid until the next call). io.EOF is returned only when the
// stream ends cleanly between pkt-lines.
func (p *pktReader) next() (pktKind, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(p.r, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return 0, nil, fmt.Errorf("%w: truncated length", errBadPktLine)
		}
		return 0, nil, err
	}
	n := 0
	for _, c := range hdr {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, nil, fmt.Errorf("%w: bad length %q", errBadPktLine, hdr[:])
		}
		n = n<<4 | int(v)
	}
	switch {
	case n == 0:
		return pktFlush, nil, nil
	case n == 1:
		return pktDelim, nil, nil
	case n == 2:
		return pktResponseEnd, nil, nil
	case n < 4 || n > maxPktLen:
		return 0, nil, fmt.Errorf("%w: bad length %q", errBadPktLine, hdr[:])
	}
	n -= 4
	if cap(p.buf) < n {
		p.buf = make([]byte, n, maxPktPayload)
	}
	p.buf = p.buf[:n]
	if _, err := io.ReadFull(p.r, p.buf); err != nil {
		return 0, nil, fmt.Errorf("%w: truncated payload: %v", errBadPktLine, err)
	}
	return pktData, p.buf, nil
}

// line reads one pkt-line and returns a data line's text without its
// trailing newline. A flush returns ("", pktFlush).
func (p *pktReader) line() (string, pktKind, error) {
	k, b, err := p.next()
	if err != nil || k != pktData {
		return "", k, err
	}
	if len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
	}
	return string(b), k, nil
}

// pktWriter writes pkt-lines to a buffered writer. The first write error
// sticks and is returned by every later call.
type pktWriter struct {
	w   *bufio.Writer
	err error
}

func newPktWriter(w io.Writer) *pktWriter {
	bw, ok := w.(*bufio.Writer)
	if !ok {
		bw = bufio.NewWriterSize(w, 64<<10)
	}
	return &pktWriter{w: bw}
}

// appendPktHeader appends the 4 hex digits of length n (payload + 4).
func appendPktHeader(dst []byte, n int) []byte {
	const hex = "0123456789abcdef"
	n += 4
	return append(dst, hex[n>>12&0xf], hex[n>>8&0xf], hex[n>>4&0xf], hex[n&0xf])
}

// data writes one pkt-line with payload b. b must not exceed maxPktPayload.
func (p *pktWriter) data(b []byte) error {
	if p.err != nil {
		return p.err
	}
	if len(b) > maxPktPayload {
		p.err = fmt.Errorf("gitserver: pkt-line payload of %d bytes too long", len(b))
		return p.err
	}
	var hdr [4]byte
	if _, err := p.w.Write(appendPktHeader(hdr[:0], len(b))); err != nil {
		p.err = err
		return err
	}
	if _, err := p.w.Write(b); err != nil {
		p.err = err
	}
	return p.err
}

// linef writes one text pkt-line; the newline is added.
func (p *pktWriter) linef(format string, args ...any) error {
	return p.data([]byte(fmt.Sprintf(format, args...) + "\n"))
}

// special writes a flush ("0000"), delim ("0001") or response-end ("0002").
func (p *pktWriter) special(k pktKind) error {
	if p.err != nil {
		return p.err
	}
	var s string
	switch k {
	case pktFlush:
		s = "0000"
	case pktDelim:
		s = "0001"
	case pktResponseEnd:
		s = "0002"
	default:
		return fmt.Errorf("gitserver: not a special pkt-line: %v", k)
	}
	_, p.err = p.w.WriteString(s)
	return p.err
}

func (p *pktWriter) flushPkt() error { return p.special(pktFlush) }

// send pushes buffered bytes to the connection: call it whenever the peer
// must see what was written before it answers.
func (p *pktWriter) send() error {
	if p.err != nil {
		return p.err
	}
	p.err = p.w.Flush()
	return p.err
}

// errLine writes git's "ERR <message>" pkt-line, which clients print as
// "remote error: <message>".
func (p *pktWriter) errLine(msg string) error {
	return p.linef("ERR %s", msg)
}

// Side bands (gitprotocol-pack, side-band-64k): every pkt-line payload
// starts with a band byte.
const (
	bandPack     byte = 1 // pack data, or report-status in receive-pack
	bandProgress byte = 2 // progress text, shown as "remote: ..."
	bandError    byte = 3 // fatal error text; the session ends
)

// bandWriter writes its bytes as side-band pkt-lines on one band, cutting
// them into packets of at most max payload bytes. It is safe for
// concurrent use (a hook's parallel nodes write progress at once); each
// Write's packets stay together.
type bandWriter struct {
	mu   *sync.Mutex
	p    *pktWriter
	band byte
	max  int
	// sendEach pushes every Write to the peer at once (progress lines).
	sendEach bool
	scratch  []byte
}

func newBandWriter(mu *sync.Mutex, p *pktWriter, band byte, sendEach bool) *bandWriter {
	return &bandWriter{mu: mu, p: p, band: band, max: maxBandPayload, sendEach: sendEach}
}

// Write sends b on the writer's band.
func (b *bandWriter) Write(data []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for len(data) > 0 {
		c := data
		if len(c) > b.max {
			c = c[:b.max]
		}
		b.scratch = append(append(b.scratch[:0], b.band), c...)
		if err := b.p.data(b.scratch); err != nil {
			return n, err
		}
		n += len(c)
		data = data[len(c):]
	}
	if b.sendEach {
		if err := b.p.send(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// packBandWriter is the fast path for pack data on band 1: it writes
// header and payload straight from the caller's buffer, no copy.
type packBandWriter struct {
	p   *pktWriter
	max int // payload bytes per packet after the band byte
}

func (b packBandWriter) Write(data []byte) (int, error) {
	n := 0
	for len(data) > 0 {
		c := data
		if len(c) > b.max {
			c = c[:b.max]
		}
		if b.p.err != nil {
			return n, b.p.err
		}
		var hdr [5]byte
		h := appendPktHeader(hdr[:0], len(c)+1)
		h = append(h, bandPack)
		if _, err := b.p.w.Write(h); err != nil {
			b.p.err = err
			return n, err
		}
		if _, err := b.p.w.Write(c); err != nil {
			b.p.err = err
			return n, err
		}
		n += len(c)
		data = data[len(c):]
	}
	return n, nil
}
