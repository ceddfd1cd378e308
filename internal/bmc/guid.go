package bmc

import (
	"context"

	"github.com/bougou/go-ipmi/pkg/command/app"
	"github.com/bougou/go-ipmi/pkg/types"
)

// SystemGUID returns the 16 bytes of the BMC's Get System GUID answer, in
// the order the BMC sent them. BMCs disagree on that order (see
// contract.SystemGUIDForms). A BMC without the command gives ErrUnsupported.
func (c *Client) SystemGUID(ctx context.Context) ([16]byte, error) {
	var res *app.GetSystemGUIDResponse
	err := c.exchange(ctx, "get system guid", types.CommandGetSystemGUID, func(ctx context.Context) error {
		var err error
		res, err = c.ipmi.GetSystemGUID(ctx)
		return err
	})
	if err != nil {
		return [16]byte{}, err
	}
	return res.GUID, nil
}
