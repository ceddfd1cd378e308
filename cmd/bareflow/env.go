package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
)

// env holds bareflow's configuration from the environment. Flags override
// it. The variables are documented in the README.
type env struct {
	DatabaseURL       string // BAREFLOW_DATABASE_URL
	DataDir           string // BAREFLOW_DATA_DIR
	SecretKey         string // BAREFLOW_SECRET_KEY
	SecretKeyFile     string // BAREFLOW_SECRET_KEY_FILE
	APIAddr           string // BAREFLOW_API_ADDR
	APIURL            string // BAREFLOW_API_URL
	Token             string // BAREFLOW_TOKEN
	TokenFile         string // BAREFLOW_TOKEN_FILE
	TaskQueue         string // BAREFLOW_TASK_QUEUE
	WebUIURL          string // BAREFLOW_WEB_UI_URL
	LogLevel          string // BAREFLOW_LOG_LEVEL
	LogFormat         string // BAREFLOW_LOG_FORMAT
	PowerSyncInterval string // BAREFLOW_POWER_SYNC_INTERVAL
	BMCTimeout        string // BAREFLOW_BMC_TIMEOUT

	TemporalAddress    string // TEMPORAL_ADDRESS
	TemporalNamespace  string // TEMPORAL_NAMESPACE
	TemporalAPIKey     string // TEMPORAL_API_KEY
	TemporalTLS        string // TEMPORAL_TLS
	TemporalTLSCert    string // TEMPORAL_TLS_CLIENT_CERT_PATH
	TemporalTLSKey     string // TEMPORAL_TLS_CLIENT_KEY_PATH
	TemporalTLSCA      string // TEMPORAL_TLS_SERVER_CA_CERT_PATH
	TemporalServerName string // TEMPORAL_TLS_SERVER_NAME

	// getenv reads the variables that a component loads itself, such as
	// the boot service's BAREFLOW_BOOT_*.
	getenv func(string) string
}

// Defaults.
const (
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/bareflow?sslmode=disable"
	defaultAPIAddr     = "127.0.0.1:8080"
	defaultTemporal    = "127.0.0.1:7233"
	defaultUIAddr      = "127.0.0.1:8233"
	defaultNamespace   = "default"
	tokenFileName      = "api-token"
	secretKeyFileName  = "secret.key"
)

func loadEnv(getenv func(string) string) env {
	e := env{
		getenv:             getenv,
		DatabaseURL:        getenv("BAREFLOW_DATABASE_URL"),
		DataDir:            getenv("BAREFLOW_DATA_DIR"),
		SecretKey:          getenv("BAREFLOW_SECRET_KEY"),
		SecretKeyFile:      getenv("BAREFLOW_SECRET_KEY_FILE"),
		APIAddr:            getenv("BAREFLOW_API_ADDR"),
		APIURL:             getenv("BAREFLOW_API_URL"),
		Token:              getenv("BAREFLOW_TOKEN"),
		TokenFile:          getenv("BAREFLOW_TOKEN_FILE"),
		TaskQueue:          getenv("BAREFLOW_TASK_QUEUE"),
		WebUIURL:           getenv("BAREFLOW_WEB_UI_URL"),
		LogLevel:           getenv("BAREFLOW_LOG_LEVEL"),
		LogFormat:          getenv("BAREFLOW_LOG_FORMAT"),
		PowerSyncInterval:  getenv("BAREFLOW_POWER_SYNC_INTERVAL"),
		BMCTimeout:         getenv("BAREFLOW_BMC_TIMEOUT"),
		TemporalAddress:    getenv("TEMPORAL_ADDRESS"),
		TemporalNamespace:  getenv("TEMPORAL_NAMESPACE"),
		TemporalAPIKey:     getenv("TEMPORAL_API_KEY"),
		TemporalTLS:        getenv("TEMPORAL_TLS"),
		TemporalTLSCert:    getenv("TEMPORAL_TLS_CLIENT_CERT_PATH"),
		TemporalTLSKey:     getenv("TEMPORAL_TLS_CLIENT_KEY_PATH"),
		TemporalTLSCA:      getenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH"),
		TemporalServerName: getenv("TEMPORAL_TLS_SERVER_NAME"),
	}
	if e.DatabaseURL == "" {
		e.DatabaseURL = defaultDatabaseURL
	}
	if e.DataDir == "" {
		e.DataDir = defaultDataDir(getenv)
	}
	if e.APIAddr == "" {
		e.APIAddr = defaultAPIAddr
	}
	if e.APIURL == "" {
		e.APIURL = "http://" + e.APIAddr
	}
	if e.TemporalAddress == "" {
		e.TemporalAddress = defaultTemporal
	}
	if e.TemporalNamespace == "" {
		e.TemporalNamespace = defaultNamespace
	}
	if e.PowerSyncInterval == "" {
		e.PowerSyncInterval = "10m"
	}
	return e
}

// tokenFile is where the CLI reads, and `bareflow dev` saves, the API token.
func (e env) tokenFile() string {
	if e.TokenFile != "" {
		return e.TokenFile
	}
	return filepath.Join(e.DataDir, tokenFileName)
}

func defaultDataDir(getenv func(string) string) string {
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "bareflow")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "share", "bareflow")
	}
	return ".bareflow"
}

// newLogger builds the process logger from BAREFLOW_LOG_LEVEL and
// BAREFLOW_LOG_FORMAT (text or json).
func newLogger(e env, w *os.File) (*slog.Logger, error) {
	var level slog.Level
	if e.LogLevel != "" {
		if err := level.UnmarshalText([]byte(e.LogLevel)); err != nil {
			return nil, fmt.Errorf("BAREFLOW_LOG_LEVEL %q: want debug, info, warn or error", e.LogLevel)
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(e.LogFormat) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("BAREFLOW_LOG_FORMAT %q: want text or json", e.LogFormat)
}

func parseDuration(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %q is not a duration such as 10m", name, v)
	}
	return d, nil
}

// temporalOptions builds Temporal client options from the standard TEMPORAL_*
// variables: address, namespace, API key and TLS.
func temporalOptions(e env, logger *slog.Logger) (client.Options, error) {
	opts := client.Options{
		HostPort:  e.TemporalAddress,
		Namespace: e.TemporalNamespace,
		Logger:    tlog.NewStructuredLogger(logger.With("component", "temporal-client")),
	}
	if e.TemporalAPIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(e.TemporalAPIKey)
	}
	useTLS := e.TemporalTLS == "true" || e.TemporalTLS == "1" || e.TemporalTLSCert != "" || e.TemporalTLSCA != "" || e.TemporalAPIKey != ""
	if e.TemporalTLS == "false" || e.TemporalTLS == "0" {
		useTLS = false
	}
	if !useTLS {
		return opts, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: e.TemporalServerName}
	if e.TemporalTLSCert != "" || e.TemporalTLSKey != "" {
		cert, err := tls.LoadX509KeyPair(e.TemporalTLSCert, e.TemporalTLSKey)
		if err != nil {
			return opts, fmt.Errorf("load Temporal client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if e.TemporalTLSCA != "" {
		pem, err := os.ReadFile(e.TemporalTLSCA)
		if err != nil {
			return opts, fmt.Errorf("read Temporal CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return opts, errors.New("TEMPORAL_TLS_SERVER_CA_CERT_PATH holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	opts.ConnectionOptions.TLS = tc
	return opts, nil
}
