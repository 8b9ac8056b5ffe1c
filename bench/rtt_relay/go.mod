module mca.local/rtt-relay

go 1.22
