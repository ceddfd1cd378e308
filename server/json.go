package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/labstack/echo/v4"
)

// decode reads a JSON body strictly: unknown fields and trailing data are
// refused, so a typo in a field name is an error rather than a silent no-op.
func decode(c echo.Context, v any) error {
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		var mbe interface{ Error() string }
		switch {
		case errors.Is(err, io.EOF):
			return errInvalid("request body is empty; a JSON object is expected")
		case errors.As(err, &se):
			return errInvalid(fmt.Sprintf("malformed JSON at byte %d", se.Offset))
		case errors.As(err, &te):
			return errInvalid(fmt.Sprintf("field %q must be %s", te.Field, te.Type))
		case errors.As(err, &mbe) && isTooLarge(err):
			return &apiError{Status: 413, Code: codeTooLarge, Message: "request body larger than 1 MiB"}
		}
		return errInvalid("invalid JSON: " + err.Error())
	}
	if dec.More() {
		return errInvalid("request body has data after the JSON object")
	}
	return nil
}

func isTooLarge(err error) bool {
	var he *echo.HTTPError
	return errors.As(err, &he) && he.Code == 413
}

// pageLimit reads the limit query parameter.
func pageLimit(c echo.Context) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, errInvalid("limit must be a whole number from 1 to 1000")
	}
	return n, nil
}

// page is a listing with the cursor of the next page, empty on the last.
type page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}
