import { describe, expect, it } from "vitest";
import { labelWithApps } from "../src/metrics";

describe("Caddy's metrics labelled with apps", () => {
  const appOfHost = new Map([
    ["shop.example.org", "shop"],
    ["www.shop.test", "shop"],
    ["blog.example.org", "blog"],
  ]);

  it("adds the app to each HTTP sample of one of its hosts, custom domains and hosts with a port included", () => {
    const text = [
      "# HELP caddy_http_requests_total Counter of HTTP(S) requests made.",
      "# TYPE caddy_http_requests_total counter",
      'caddy_http_requests_total{handler="subroute",host="shop.example.org",server="slipway"} 4',
      'caddy_http_request_duration_seconds_bucket{code="200",handler="subroute",host="www.shop.test",method="GET",server="slipway",le="0.005"} 3',
      'caddy_http_request_duration_seconds_count{code="503",handler="static_response",host="blog.example.org:8443",method="GET",server="slipway"} 1',
    ].join("\n");
    expect(labelWithApps(text, appOfHost).split("\n")).toEqual([
      "# HELP caddy_http_requests_total Counter of HTTP(S) requests made.",
      "# TYPE caddy_http_requests_total counter",
      'caddy_http_requests_total{handler="subroute",host="shop.example.org",app="shop",server="slipway"} 4',
      'caddy_http_request_duration_seconds_bucket{code="200",handler="subroute",host="www.shop.test",app="shop",method="GET",server="slipway",le="0.005"} 3',
      'caddy_http_request_duration_seconds_count{code="503",handler="static_response",host="blog.example.org:8443",app="blog",method="GET",server="slipway"} 1',
    ]);
  });

  it("leaves hosts no app has, Caddy's catch-all and every other metric as they are", () => {
    const text = [
      'caddy_http_requests_total{handler="static_response",host="_other",server="slipway"} 2',
      'caddy_http_requests_total{handler="static_response",host="gone.example.org",server="slipway"} 1',
      'caddy_admin_http_requests_total{code="200",handler="load",method="POST",path="/load"} 7',
      'go_goroutines 31',
    ].join("\n");
    expect(labelWithApps(text, appOfHost)).toBe(text);
  });
});
