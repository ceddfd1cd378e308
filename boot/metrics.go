package boot

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Outcomes counted by the metrics.
const (
	outcomeOK          = "ok"
	outcomeNAK         = "nak"
	outcomeIgnored     = "ignored"
	outcomeNoNetwork   = "no_network"
	outcomeUnknownMAC  = "unknown_mac"
	outcomeExhausted   = "pool_exhausted"
	outcomeError       = "error"
	outcomeBusy        = "busy"
	outcomeRefused     = "refused"
	outcomeNotFound    = "not_found"
	outcomeBadRequest  = "bad_request"
	outcomeForbidden   = "forbidden"
	outcomeUnavailable = "unavailable"
)

// metrics are the boot service's Prometheus counters, on a registry of its
// own so that two services in one process (tests) do not collide.
type metrics struct {
	registry      *prometheus.Registry
	dhcp          *prometheus.CounterVec
	tftp          *prometheus.CounterVec
	http          *prometheus.CounterVec
	events        *prometheus.CounterVec
	tftpBytesSent prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		dhcp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bareflow_boot_dhcp_requests_total",
			Help: "DHCP requests by message type and outcome.",
		}, []string{"type", "outcome"}),
		tftp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bareflow_boot_tftp_requests_total",
			Help: "TFTP requests by operation and outcome.",
		}, []string{"op", "outcome"}),
		http: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bareflow_boot_http_requests_total",
			Help: "HTTP boot requests by endpoint and outcome.",
		}, []string{"endpoint", "outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bareflow_boot_events_total",
			Help: "Boot events for workflows by outcome: sent, dropped (queue full) or failed.",
		}, []string{"outcome"}),
		tftpBytesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bareflow_boot_tftp_sent_bytes_total",
			Help: "Bytes of files sent over TFTP.",
		}),
	}
	m.registry.MustRegister(m.dhcp, m.tftp, m.http, m.events, m.tftpBytesSent)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
