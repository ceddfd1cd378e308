package images

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// Checksum is the expected digest of the image file as served (for a
// compressed image, of the compressed bytes).
type Checksum struct {
	// Algorithm is "sha256" or "sha512".
	Algorithm string
	// Sum is the raw digest.
	Sum []byte
}

// ParseChecksum parses "sha256:HEX" or "sha512:HEX".
func ParseChecksum(s string) (Checksum, error) {
	algo, hexSum, ok := strings.Cut(s, ":")
	if !ok {
		return Checksum{}, fmt.Errorf("checksum %q: want ALGORITHM:HEX", s)
	}
	c := Checksum{Algorithm: strings.ToLower(algo)}
	sum, err := hex.DecodeString(hexSum)
	if err != nil {
		return Checksum{}, fmt.Errorf("checksum %q: %w", s, err)
	}
	c.Sum = sum
	return c, c.Validate()
}

// Validate reports whether the algorithm is supported and the digest has its
// length.
func (c Checksum) Validate() error {
	var size int
	switch c.Algorithm {
	case "sha256":
		size = sha256.Size
	case "sha512":
		size = sha512.Size
	default:
		return fmt.Errorf("checksum algorithm %q: want sha256 or sha512", c.Algorithm)
	}
	if len(c.Sum) != size {
		return fmt.Errorf("%s checksum: got %d bytes, want %d", c.Algorithm, len(c.Sum), size)
	}
	return nil
}

// String returns "ALGORITHM:HEX".
func (c Checksum) String() string {
	return c.Algorithm + ":" + hex.EncodeToString(c.Sum)
}

func (c Checksum) newHash() hash.Hash {
	if c.Algorithm == "sha512" {
		return sha512.New()
	}
	return sha256.New()
}
