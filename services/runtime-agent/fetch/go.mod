module slipway/runtime-agent/fetch

go 1.22
