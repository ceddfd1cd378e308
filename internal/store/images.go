package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"bareflow/contract"
	"bareflow/internal/secret"
)

// Image is an OS image machines are installed from. Its headers (a token
// for an image service) are never here: ImageSource returns them.
type Image struct {
	ID   string
	Name string
	URL  string
	// HeaderNames lists the names of the extra headers it is fetched with.
	HeaderNames []string
	Format      contract.ImageFormat
	// ChecksumAlgo is "sha256" or "sha512"; Checksum the file's digest in
	// lower-case hex.
	ChecksumAlgo string
	Checksum     string
	VirtualSize  int64
	OSFamily     contract.OSFamily
	BootMode     contract.ImageBootMode
	CreatedAt    time.Time
}

// ImageCreate is a new image; Headers are sealed before they are stored.
type ImageCreate struct {
	Image
	Headers map[string]secret.String
}

var (
	imageName   = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)
	headerName  = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	hexChecksum = map[string]*regexp.Regexp{
		"sha256": regexp.MustCompile(`^[0-9a-f]{64}$`),
		"sha512": regexp.MustCompile(`^[0-9a-f]{128}$`),
	}
)

// maxImageHeaders bounds the extra headers of an image.
const maxImageHeaders = 8

func (in *ImageCreate) validate() error {
	if !imageName.MatchString(in.Name) {
		return invalidf("image name %q must be 1 to 63 lower-case letters, digits, '.', '_' or '-'", in.Name)
	}
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return invalidf("image URL %q must be an http or https URL without credentials (put a token in a header)", in.URL)
	}
	if err := in.Format.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	in.Checksum = strings.ToLower(strings.TrimSpace(in.Checksum))
	re, ok := hexChecksum[in.ChecksumAlgo]
	if !ok {
		return invalidf("checksum algorithm %q: want sha256 or sha512", in.ChecksumAlgo)
	}
	if !re.MatchString(in.Checksum) {
		return invalidf("checksum must be the %s digest in hex", in.ChecksumAlgo)
	}
	if in.VirtualSize < 0 {
		return invalidf("virtual size must not be negative")
	}
	if in.OSFamily == "" {
		in.OSFamily = contract.OSGeneric
	}
	if err := in.OSFamily.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if in.BootMode == "" {
		in.BootMode = contract.ImageBootBoth
	}
	if err := in.BootMode.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(in.Headers) > maxImageHeaders {
		return invalidf("at most %d headers", maxImageHeaders)
	}
	for k, v := range in.Headers {
		if !headerName.MatchString(k) {
			return invalidf("header name %q must be letters, digits and '-'", k)
		}
		if strings.ContainsAny(v.Reveal(), "\r\n") || len(v.Reveal()) > 4096 {
			return invalidf("header %s must be one line of at most 4096 bytes", k)
		}
	}
	return nil
}

func imageHeadersAD(id string) string { return "images.headers:" + id }

const imageColumns = `id, name, url, headers, format, checksum_algo, checksum, virtual_size, os_family, boot_mode, created_at`

// scanImage reads an image; sealed is its sealed headers.
func scanImage(row pgx.Row) (Image, []byte, error) {
	var (
		im                       Image
		sealed                   []byte
		format, family, bootMode string
	)
	err := row.Scan(&im.ID, &im.Name, &im.URL, &sealed, &format, &im.ChecksumAlgo, &im.Checksum, &im.VirtualSize,
		&family, &bootMode, &im.CreatedAt)
	im.Format, im.OSFamily, im.BootMode = contract.ImageFormat(format), contract.OSFamily(family), contract.ImageBootMode(bootMode)
	return im, sealed, err
}

func (s *Store) openHeaders(im *Image, sealed []byte) (map[string]secret.String, error) {
	if sealed == nil {
		return map[string]secret.String{}, nil
	}
	raw, err := s.open(sealed, imageHeadersAD(im.ID))
	if err != nil {
		return nil, fmt.Errorf("open headers of image %s: %w", im.Name, err)
	}
	var h map[string]string
	if err := json.Unmarshal([]byte(raw.Reveal()), &h); err != nil {
		return nil, fmt.Errorf("headers of image %s: %w", im.Name, err)
	}
	out := make(map[string]secret.String, len(h))
	for k, v := range h {
		out[k] = secret.String(v)
		im.HeaderNames = append(im.HeaderNames, k)
	}
	return out, nil
}

// CreateImage records a new image.
func (s *Store) CreateImage(ctx context.Context, in ImageCreate) (Image, error) {
	if err := in.validate(); err != nil {
		return Image{}, fmt.Errorf("create image: %w", err)
	}
	var out Image
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			sealed []byte
			err    error
		)
		out, sealed, err = scanImage(tx.QueryRow(ctx, `
			INSERT INTO images (name, url, format, checksum_algo, checksum, virtual_size, os_family, boot_mode)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+imageColumns,
			in.Name, in.URL, string(in.Format), in.ChecksumAlgo, in.Checksum, in.VirtualSize, string(in.OSFamily), string(in.BootMode)))
		if err != nil || len(in.Headers) == 0 {
			return err
		}
		plain := make(map[string]string, len(in.Headers))
		for k, v := range in.Headers {
			plain[k] = v.Reveal()
			out.HeaderNames = append(out.HeaderNames, k)
		}
		doc, err := json.Marshal(plain)
		if err != nil {
			return err
		}
		sealed, err = s.seal(secret.String(doc), imageHeadersAD(out.ID))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE images SET headers = $2 WHERE id = $1`, out.ID, sealed)
		return err
	})
	if err != nil {
		return Image{}, fmt.Errorf("create image %q: %w", in.Name, dbError(err))
	}
	slices.Sort(out.HeaderNames)
	return out, nil
}

// GetImage returns the image with the given ID or name.
func (s *Store) GetImage(ctx context.Context, ref string) (Image, error) {
	im, _, err := s.ImageSource(ctx, ref)
	return im, err
}

// ImageSource returns the image with the given ID or name and the headers
// it is fetched with.
func (s *Store) ImageSource(ctx context.Context, ref string) (Image, map[string]secret.String, error) {
	q := `SELECT ` + imageColumns + ` FROM images WHERE name = $1`
	if isUUID(ref) {
		q = `SELECT ` + imageColumns + ` FROM images WHERE id = $1`
	}
	im, sealed, err := scanImage(s.pool.QueryRow(ctx, q, ref))
	if errors.Is(err, pgx.ErrNoRows) {
		return Image{}, nil, fmt.Errorf("get image: %w", notFound("image", ref))
	}
	if err != nil {
		return Image{}, nil, fmt.Errorf("get image %s: %w", ref, err)
	}
	h, err := s.openHeaders(&im, sealed)
	if err != nil {
		return Image{}, nil, err
	}
	slices.Sort(im.HeaderNames)
	return im, h, nil
}

// ListImages returns every image in name order.
func (s *Store) ListImages(ctx context.Context) ([]Image, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+imageColumns+` FROM images ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	defer rows.Close()
	var out []Image
	for rows.Next() {
		im, sealed, err := scanImage(rows)
		if err != nil {
			return nil, fmt.Errorf("list images: %w", err)
		}
		if _, err := s.openHeaders(&im, sealed); err != nil {
			return nil, err
		}
		slices.Sort(im.HeaderNames)
		out = append(out, im)
	}
	return out, rows.Err()
}

// DeleteImage deletes an image.
func (s *Store) DeleteImage(ctx context.Context, id string) error {
	if !isUUID(id) {
		return fmt.Errorf("delete image: %w", notFound("image", id))
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM images WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete image %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete image: %w", notFound("image", id))
	}
	return nil
}
