package devserver

import (
	_ "github.com/bougou/go-ipmi/pkg/client"
	_ "github.com/insomniacslk/dhcp/dhcpv4/server4"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/labstack/echo/v4"
	_ "github.com/pin/tftp/v3"
	_ "go.temporal.io/sdk/client"
	_ "golang.org/x/crypto/ssh"
)
