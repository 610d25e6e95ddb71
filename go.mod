module hpcbot

go 1.26.8
