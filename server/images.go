package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"bareflow/contract"
	"bareflow/internal/secret"
	"bareflow/internal/store"
)

type imageJSON struct {
	ID           string                 `json:"id"`
	Name         string                 `json:"name"`
	URL          string                 `json:"url"`
	HeaderNames  []string               `json:"header_names,omitempty"`
	Format       contract.ImageFormat   `json:"format"`
	ChecksumAlgo string                 `json:"checksum_algo"`
	Checksum     string                 `json:"checksum"`
	VirtualSize  int64                  `json:"virtual_size,omitempty"`
	OSFamily     contract.OSFamily      `json:"os_family"`
	BootMode     contract.ImageBootMode `json:"boot_mode"`
	CreatedAt    time.Time              `json:"created_at"`
}

func toImageJSON(im store.Image) imageJSON {
	return imageJSON{
		ID: im.ID, Name: im.Name, URL: im.URL, HeaderNames: im.HeaderNames, Format: im.Format,
		ChecksumAlgo: im.ChecksumAlgo, Checksum: im.Checksum, VirtualSize: im.VirtualSize,
		OSFamily: im.OSFamily, BootMode: im.BootMode, CreatedAt: im.CreatedAt,
	}
}

// imageInput creates an image. Headers are write-only: responses name them
// and never carry their values.
type imageInput struct {
	Name         string                 `json:"name"`
	URL          string                 `json:"url"`
	Headers      map[string]string      `json:"headers"`
	Format       contract.ImageFormat   `json:"format"`
	ChecksumAlgo string                 `json:"checksum_algo"`
	Checksum     string                 `json:"checksum"`
	VirtualSize  int64                  `json:"virtual_size"`
	OSFamily     contract.OSFamily      `json:"os_family"`
	BootMode     contract.ImageBootMode `json:"boot_mode"`
}

func (s *Server) listImages(c echo.Context) error {
	ims, err := s.store.ListImages(c.Request().Context())
	if err != nil {
		return err
	}
	out := page[imageJSON]{Items: make([]imageJSON, len(ims))}
	for i, im := range ims {
		out.Items[i] = toImageJSON(im)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) createImage(c echo.Context) error {
	var in imageInput
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.ChecksumAlgo == "" {
		in.ChecksumAlgo = "sha256"
	}
	headers := make(map[string]secret.String, len(in.Headers))
	for k, v := range in.Headers {
		headers[k] = secret.String(v)
	}
	im, err := s.store.CreateImage(c.Request().Context(), store.ImageCreate{
		Image: store.Image{Name: in.Name, URL: in.URL, Format: in.Format, ChecksumAlgo: in.ChecksumAlgo, Checksum: in.Checksum,
			VirtualSize: in.VirtualSize, OSFamily: in.OSFamily, BootMode: in.BootMode},
		Headers: headers,
	})
	if err != nil {
		return err
	}
	setAudit(c, "image.create", im.ID, "")
	return c.JSON(http.StatusCreated, toImageJSON(im))
}

func (s *Server) image(c echo.Context) (store.Image, error) {
	ref := c.Param("id")
	im, err := s.store.GetImage(c.Request().Context(), ref)
	if errors.Is(err, store.ErrNotFound) {
		return im, errNotFound(fmt.Sprintf("no image %q", ref))
	}
	return im, err
}

func (s *Server) showImage(c echo.Context) error {
	im, err := s.image(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toImageJSON(im))
}

func (s *Server) deleteImage(c echo.Context) error {
	im, err := s.image(c)
	if err != nil {
		return err
	}
	if err := s.store.DeleteImage(c.Request().Context(), im.ID); err != nil {
		return err
	}
	setAudit(c, "image.delete", im.ID, "")
	return c.NoContent(http.StatusNoContent)
}
