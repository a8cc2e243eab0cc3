-- wrk script for forward proxies: point wrk at the proxy and put the absolute URI on the request line
-- (RFC 9112 §3.2.2), as a browser configured with an HTTP proxy does:
--
--   wrk -t1 -c32 -d10s --latency -s bench/absolute-uri.lua http://127.0.0.1:PROXY/ -- http://127.0.0.1:ORIGIN/
--
-- Without a target argument it sends wrk's usual origin-form request, so the direct run uses the same
-- script and pays the same Lua cost per request.
--
-- The request is formatted once per thread: calling wrk.format for every request would make wrk, which
-- shares the CPU with the proxy on a small machine, slower than it needs to be.

local req = nil

function init(args)
  local target = args[1]
  if target == nil then
    req = wrk.format()
    return
  end
  local authority = target:match("^http://([^/]+)")
  if authority == nil then
    error("absolute-uri.lua: the target must be an http:// URL, got " .. target)
  end
  -- Host names the origin, not the proxy (RFC 9112 §3.2.2: Host matches the URI's authority).
  wrk.headers["Host"] = authority
  req = wrk.format("GET", target)
end

function request()
  return req
end
