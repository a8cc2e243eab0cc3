import { describe, expect, it } from 'vitest';
import { analyzeUri, isOcspGetRequest, percentDecode } from '../../../../src/scoring/features/uri.js';
import type { BenignShape, UriEncoding } from '../../../../src/scoring/features/uri.js';

/** A real OCSP request over GET (RFC 6960 Appendix A.1): base64 of a DER OCSPRequest for one certificate. */
const OCSP_B64 = 'MFEwTzBNMEswSTAJBgUrDgMCGgUABBQ50otx/h0Ztl+z8SiPI7wEWVxDlQQUTiJUIBiV5uNu5g/6+rkS7QYXjzkCEAUZZSZEml49Gjh0j13RD+k=';
const RANDOM32 = 'aZ3kP9qLm2XvB7nR4tW8yE1uC6oD0sFh';

describe('the measurements', () => {
  it('counts non-empty segments and the longest segment and query value', () => {
    const facts = analyzeUri('//api/v1//users/', 'page=2&filter=active-users&x');
    expect(facts).toMatchObject({ segmentCount: 3, maxSegmentLength: 5, maxQueryValueLength: 12 });
    expect(analyzeUri('/', undefined)).toEqual({
      segmentCount: 0,
      maxSegmentLength: 0,
      maxSegmentEntropy: 0,
      maxQueryValueLength: 0,
      encoding: null,
      randomSegment: false,
      benignShape: null,
      hottest: null,
    });
    expect(analyzeUri('', '').segmentCount).toBe(0);
  });

  it('reports the entropy of the most random-looking part of 8+ characters, rounded to 2 decimals, and names it', () => {
    const facts = analyzeUri('/docs/abcdefgh/short', 'q=aaaaaaaaaa');
    expect(facts.maxSegmentEntropy).toBe(3); // 'abcdefgh': 8 distinct characters
    expect(facts.hottest).toBe('abcdefgh');
    const random = analyzeUri(`/x/${RANDOM32}`, undefined);
    expect(random.maxSegmentEntropy).toBe(5);
    expect(Number.isInteger(analyzeUri('/abcdefghij', undefined).maxSegmentEntropy * 100)).toBe(true);
    // Parts under 8 characters are not measured.
    expect(analyzeUri('/abc/defg', 'k=xyz').maxSegmentEntropy).toBe(0);
  });

  it('measures a file name without its extension, and cuts the reason text to 48 characters', () => {
    expect(analyzeUri('/abcdefgh.woff2', undefined).maxSegmentEntropy).toBe(3);
    const long = `/${'Zq3'.repeat(5)}${RANDOM32}${RANDOM32}`;
    expect(analyzeUri(long, undefined).hottest).toHaveLength(48);
  });

  it('decodes percent-escapes before measuring (a base64 value with %2B %2F %3D is still base64)', () => {
    const facts = analyzeUri('/index.php', 'id=U2FsdGVkX1%2B9k3lq0bWQzRkL2pX8mN3vB7tY%2Fw%3D%3D');
    expect(facts.encoding).toBe('base64');
    expect(facts.randomSegment).toBe(true);
    expect(percentDecode('a%2Fb%zzc%4', 0, 11)).toBe('a/b%zzc%4');
  });
});

describe('C2-looking URIs come out random or encoded', () => {
  it.each<[string, string, string | undefined, UriEncoding | null]>([
    ['a 32-character random alphanumeric segment', `/${RANDOM32}`, undefined, 'base64url'],
    ['an OpenSSL-salted base64 query value', '/index.php', 'id=U2FsdGVkX1+9k3lq0bWQzRkL2pX8mN3vB7tY', 'base64'],
    ['a bare base64 query with padding', '/', 'dGhpcyBpcyBhIHNlY3JldCBtZXNzYWdlIGZvciB0aGUgQzI=', 'base64'],
    ['a long Metasploit reverse_http URI (payload UUID + padding)', '/pU3KGCUwux1tE2wSCIFtkwDMJV-73', undefined, 'base64url'],
    ['a Metasploit-style base64url session path', '/4PuI_x8Yq2LmZ0vK9rT3wB6nC1dF7gH5jS', undefined, 'base64url'],
    ['a long random .woff name, as Sliver-style stagers use', `/static/js/${RANDOM32}.woff`, undefined, 'base64url'],
    ['a long random .php name', `/wp-content/${RANDOM32}.php`, 'x=1', 'base64url'],
    ['a hex session token', '/api', 'session=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', 'hex'],
    ['a Mythic-style message (base64 of UUID + ciphertext)', '/index', 'q=ZjQ2ZDFiZTgtNGI5OC00ZGQ5LWE3NTMtNmRkMjE4ZDZiMmJi5+7nYV7zXzDkm0guFcrnUAcgHhJhew/tp+Fkd5b', 'base64'],
    ['all-lower-case random letters (no vowels to speak of)', '/xkqvzplwmtrbnsdfghjk', undefined, null],
  ])('%s', (_intent, path, query, encoding) => {
    const facts = analyzeUri(path, query);
    expect(facts.randomSegment).toBe(true);
    expect(facts.encoding).toBe(encoding);
    expect(facts.benignShape).toBeNull();
    expect(facts.hottest).not.toBeNull();
  });

  it('a known default URI is a shape, not randomness (Empire /login/process.php, Metasploit /AbCd)', () => {
    for (const [path, query] of [['/login/process.php', undefined], ['/admin/get.php', undefined], ['/AbCd', undefined], ['/submit.php', 'id=123429392']] as const) {
      const facts = analyzeUri(path, query);
      expect(facts.randomSegment, path).toBe(false);
      expect(facts.encoding, path).toBeNull();
    }
  });
});

describe('words, slugs and identifiers are not random', () => {
  it.each<[string, string, string | undefined]>([
    ['a REST path', '/api/v2/orders', undefined],
    ['a long blog slug', '/blog/my-very-long-blog-post-title-about-printers', undefined],
    ['a search query with + for spaces', '/search', 'q=how+to+fix+the+printer+driver+issue+on+windows'],
    ['a camelCase API name', '/api/getUserProfileInformationById', undefined],
    ['a timestamped photo name', '/photos/IMG_20240101_123456.jpg', undefined],
    ['a cache-busting number', '/js/app/jquery.min.js', 'x=1234567&_=1700000000000'],
    ['an ISO timestamp', '/events', 'from=2024-01-01T12:00:00Z&to=2024-01-02T12:00:00Z'],
    ['an e-mail address', '/unsubscribe', 'email=john.smith%40example.com'],
  ])('%s', (_intent, path, query) => {
    const facts = analyzeUri(path, query);
    expect(facts.randomSegment).toBe(false);
    expect(facts.encoding).toBeNull();
  });
});

describe('benign shapes: random-looking parts a SOC analyst would wave through', () => {
  it.each<[BenignShape, string, string, string | undefined]>([
    ['webpack-chunk', 'webpack [name].[contenthash] (20 hex)', '/static/js/main.8f3a2b1c9d0e4f5a6b7c.js', undefined],
    ['webpack-chunk', 'CRA chunk with the hash in the middle', '/static/js/vendors~main.8f3a2b1c9d0e4f5a6b7c.chunk.js', undefined],
    ['webpack-chunk', 'Next.js build id folder', '/_next/static/Hj3kL9mQ2xV7bN4rT8wY1/_buildManifest.js', undefined],
    ['webpack-chunk', 'Next.js chunks', '/_next/static/chunks/pages/_app-2b4f3c5d6e7f8a9b0c1d.js', undefined],
    ['asset-hash', 'a hex content hash as a font name', '/static/7d9f3c2e8b1a4f6d0e5c9b2a7f1d3e8c.woff2', undefined],
    ['asset-hash', 'an OCI registry blob', '/v2/library/nginx/blobs/sha256:5e2b1f8a3c4d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7', undefined],
    ['asset-hash', 'a Gravatar image (MD5 of the e-mail)', '/avatar/205e460b479e2e5b48aec07710c08d50', 's=80&d=identicon'],
    ['asset-hash', 'a Google Fonts file', '/s/roboto/v30/KFOmCnqEu92Fr1Mu4mxK.woff2', undefined],
    ['asset-hash', 'a build hash as cache buster on a stylesheet', '/css/site.css', 'v=8f3a2b1c9d0e4f5a6b7c'],
    ['oauth', 'an authorization code and state on a callback', '/oauth2/callback', 'code=4%2F0AX4XfWh7kQ9zLmP2vN8rT5yB3cD6eF1gH0jK&state=xK9mP2vL8qR4tW7yB3nC6dF1'],
    ['oauth', 'an OIDC authorize request (nonce, state)', '/common/oauth2/v2.0/authorize', 'client_id=6731de76-14a6-49ae-97bc-6eba6914391e&response_type=code&scope=openid&state=12345abcXYZ9876zyxQWE&nonce=Zk3lP9qLm2XvB7nR4tW8'],
    ['oauth', 'an id_token and access_token', '/signin-oidc', 'id_token=eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ&access_token=Zk3lP9qLm2XvB7nR4tW8yE1uC6oD0sFh'],
    ['saml', 'a SAML HTTP-Redirect request', '/adfs/ls/', 'SAMLRequest=fZJNT%2BMwEIbvSPwHy%2Fd8tWlLrSaoC0KLxGojWjhwc52JkzaxHdnuZvfb49LyoI67r2P52z7VMrHhNYN8vNaZr'],
    ['ocsp', 'an OCSP GET, percent-encoded', `/${encodeURIComponent(OCSP_B64)}`, undefined],
    ['ocsp', 'an OCSP GET with raw / splitting it', `/${OCSP_B64}`, undefined],
    ['ocsp', 'an OCSP GET below a responder path', `/ocsp/${encodeURIComponent(OCSP_B64)}`, undefined],
    ['analytics', 'a GA4 beacon with a click id', '/g/collect', 'v=2&tid=G-ABC123XYZ&gclid=Cj0KCQjwzva1BhD3ARIsADQuPnVDJ0LqRPkXq7&cid=1234567890.1700000000'],
    ['analytics', 'a classic GA /__utm.gif', '/__utm.gif', 'utmwv=5.7.2&utmn=1394817261&utmcc=__utma%3DkP9qLm2XvB7nR4tW8yE1uC6oD0sFh'],
    ['signed-url', 'an S3 presigned URL', '/bucket/report.pdf', 'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024'],
    ['signed-url', 'an Azure SAS', '/container/blob.txt', 'sv=2021-08-06&sp=r&se=2024-01-01T00%3A00%3A00Z&sig=Hk3lP9qLm2XvB7nR4tW8yE1uC6oD0sFh%2BabcDEF%3D'],
    ['signed-url', 'a CloudFront signed URL', '/video/intro.mp4', 'Expires=1700000000&Signature=Hk3lP9qLm2XvB7nR4tW8yE1uC6oD0sFh~abc&Key-Pair-Id=K2JCJMDEHXQW5F'],
    ['uuid-resource', 'a GUID resource id', '/api/users/3f2504e0-4f89-11d3-9a0c-0305e82c3301/profile', undefined],
    ['uuid-resource', 'a MongoDB ObjectId', '/api/items/5f8d0d55b54764421b7156c9', undefined],
    ['uuid-resource', 'a GUID client id in the query', '/sync/v1/ping', 'client-request-id=9f2a6c1d-3e4b-4f8a-9c7d-1e2f3a4b5c6d'],
    ['api-key', 'a Google API key', '/safebrowsing/downloads', 'client=googlechrome&key=AIzaSyBOti4mM-6x9WDnZIjIeyEU21OpBXqWBgw'],
    ['windows-update', 'Delivery Optimization content with its P4 signature', '/filestreamingservice/files/4b5f4a5e-3c2d-4e1f-9a8b-7c6d5e4f3a2b', 'P1=1700000000&P2=404&P3=2&P4=dGhpcyBpcyBhIHNpZ25hdHVyZSBvZiBzb21lIGtpbmQ%2BPz4%3D'],
    ['windows-update', 'a Windows Update package named by its SHA-1', '/d/msdownload/update/software/secu/2023/01/windows10.0-kb5022282-x64_fdc5b6e8c0d4a1b2c3d4e5f60718293a4b5c6d7e.msu', undefined],
    ['windows-update', 'a certificate trust list with a hex cache buster', '/msdownload/update/v3/static/trustedr/en/disallowedcertstl.cab', '6e7c5a2b8f2f2b6c4d3e2f1a'],
    ['package-registry', 'a PyPI file', '/packages/ab/cd/0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab/requests-2.31.0.tar.gz', undefined],
    ['git-object', "a loose object over git's dumb HTTP", '/repo.git/objects/ab/cdef0123456789abcdef0123456789abcdef01', undefined],
    ['git-object', 'a pack file', '/repo.git/objects/pack/pack-a8f3c1e9b7d2046f5e1c3b9a7d8e2f4c6b0a1d3e.pack', undefined],
  ])('%s: %s', (shape, _intent, path, query) => {
    const facts = analyzeUri(path, query);
    expect(facts.randomSegment).toBe(false);
    expect(facts.benignShape).toBe(shape);
    expect(facts.encoding === null || facts.encoding === 'guid').toBe(true);
  });

  it('bundler names that are not random-looking at all stay quiet (no benign label needed)', () => {
    for (const path of ['/static/js/main.3f2a1b9c.js', '/assets/chunk-5QXQ4J3N.js', '/assets/index-DiwFRf3T.css', '/static/js/2.7b8c9d0e.chunk.js']) {
      expect(analyzeUri(path, undefined), path).toMatchObject({ randomSegment: false, encoding: null });
    }
  });

  it('a benign shape covers only its own parts: a random value beside it is still random', () => {
    // The signature is exempt, the extra payload is not.
    expect(analyzeUri('/bucket/key', `X-Amz-Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024&data=${RANDOM32}`).randomSegment).toBe(true);
    // A GUID segment is a resource id; a random sibling is not.
    expect(analyzeUri(`/api/users/3f2504e0-4f89-11d3-9a0c-0305e82c3301/${RANDOM32}`, undefined).randomSegment).toBe(true);
  });

  it('look-alikes without the context are not waved through', () => {
    // code= on an arbitrary path, with no other OAuth parameter: no anchor.
    expect(analyzeUri('/cb', 'code=4%2F0AX4XfWh7kQ9zLmP2vN8rT5yB3cD6eF1gH0jK')).toMatchObject({ randomSegment: true, benignShape: null });
    // Starts like OCSP (MF…) but is not a DER OCSPRequest.
    expect(analyzeUri('/MFq3kP9qLm2XvB7nR4tW8yE1uC6oD0sFhZk3lP9qLm2XvB7nR4', undefined)).toMatchObject({ randomSegment: true, benignShape: null });
    // Signature= without Expires is not a signing scheme.
    expect(analyzeUri('/x', `Signature=${RANDOM32}`).randomSegment).toBe(true);
    // /collect without GA's v= and tid=.
    expect(analyzeUri('/collect', `data=${RANDOM32}`).randomSegment).toBe(true);
    // A random name with a static extension is not a bundle: there is no word-like name before a hash.
    expect(analyzeUri(`/assets/${RANDOM32}.js`, undefined).randomSegment).toBe(true);
    // A cache-buster key with a long non-hex value is judged like any other value.
    expect(analyzeUri('/css/site.css', 'v=U2FsdGVkX1+9k3lq0bWQzRkL2pX8mN3vB7tY').randomSegment).toBe(true);
  });
});

describe('OCSP over GET (RFC 6960 Appendix A.1)', () => {
  it('recognises a DER OCSPRequest and refuses look-alikes', () => {
    expect(isOcspGetRequest(OCSP_B64)).toBe(true);
    expect(isOcspGetRequest(encodeURIComponent(OCSP_B64))).toBe(true);
    expect(isOcspGetRequest(OCSP_B64.slice(0, -4))).toBe(false); // truncated: the DER length no longer covers it
    expect(isOcspGetRequest('MFEwTzBNMEswSTAJBgUr')).toBe(false);
    expect(isOcspGetRequest(`MF${RANDOM32}AA`)).toBe(false);
    expect(isOcspGetRequest('')).toBe(false);
    expect(isOcspGetRequest('%%%%%%%%')).toBe(false);
  });
});

describe('speed', () => {
  it('a typical 3-segment path takes microseconds (median over repeated runs)', () => {
    const samples: number[] = [];
    for (let round = 0; round < 21; round++) {
      const n = 2000;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) analyzeUri('/products/shoes/running-shoes-for-men', 'color=blue&size=42');
      samples.push(((performance.now() - t0) * 1000) / n);
    }
    samples.sort((a, b) => a - b);
    // Measured ≈ 1 µs median on the development machine (target ≤ 3 µs); the bound here only catches a
    // pathological regression on a loaded CI machine.
    expect(samples[10]).toBeLessThan(30);
  });
});
