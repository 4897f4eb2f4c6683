module github.com/spreadtrain/spreadtrain

go 1.23
