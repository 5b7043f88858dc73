module github.com/prometheus/prometheus/documentation/examples/remote_storage

go 1.18

require (
	github.com/go-kit/log v0.2.1
	github.com/gogo/protobuf v1.3.2
	github.com/golang/snappy v0.0.4
)

require (
	github.com/docker/distribution v2.8.1+incompatible // indirect
	github.com/kr/pretty v0.3.0 // indirect
)

require (
	github.com/prometheus/prometheus v0.37.1-0.20221011120840-430bdc9dd099
	golang.org/x/oauth2 v0.0.0-20220808172628-8227340efae7 // indirect
)

exclude (
	// These excludes are needed because of some weird version collision.
	// Feel free to try removing them after future dependency updates.
	cloud.google.com/go v0.26.0
	cloud.google.com/go v0.34.0
	cloud.google.com/go v0.65.0
	cloud.google.com/go v0.82.0
)
