-- 0003_network_overlap: two networks never overlap, so that an address
-- belongs to exactly one network and giaddr or an interface picks one
-- network unambiguously.
ALTER TABLE networks
    ADD CONSTRAINT networks_no_overlap EXCLUDE USING gist (cidr inet_ops WITH &&);
