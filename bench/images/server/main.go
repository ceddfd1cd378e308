// Command server serves a directory over HTTP (with Range support) for the
// image writer benchmark; it prints its address on stdout.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	dir := flag.String("dir", ".", "directory served")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintln(os.Stdout, "http://"+ln.Addr().String())
	log.Fatal(http.Serve(ln, http.FileServer(http.Dir(*dir))))
}
