module github.com/supersocket-go/supersocket

go 1.26
