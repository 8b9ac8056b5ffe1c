module mca.local/h2-client

go 1.22
