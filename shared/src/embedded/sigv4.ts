import { timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import aws4 from "aws4";

export interface S3Credentials {
  accessKey: string;
  secretKey: string;
}

export interface IncomingS3Request {
  method: string;
  /** The request target exactly as sent: path and query, still percent-encoded. */
  url: string;
  headers: IncomingHttpHeaders;
}

export type SignatureCheck =
  | { ok: true }
  | { ok: false; code: "AccessDenied" | "InvalidAccessKeyId" | "AuthorizationHeaderMalformed" | "SignatureDoesNotMatch"; message: string };

const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/;

const deny = (code: Exclude<SignatureCheck, { ok: true }>["code"], message: string): SignatureCheck => ({ ok: false, code, message });

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

/** The request target without its X-Amz-Signature parameter, which a presigned URL signs everything but. */
function withoutSignatureParam(url: string): string {
  const at = url.indexOf("?");
  if (at < 0) return url;
  const params = url.slice(at + 1).split("&").filter((param) => !param.startsWith("X-Amz-Signature="));
  return `${url.slice(0, at)}?${params.join("&")}`;
}

/**
 * Verifies an S3 request's AWS Signature Version 4 (an Authorization header or a presigned URL)
 * against the one key pair the server knows, by signing the same canonical request again with
 * `aws4`. Anonymous and Version 2 requests are refused. The payload itself is not re-hashed: its
 * declared sha256 (x-amz-content-sha256) is covered by the signature, which is what proves the
 * sender holds the secret.
 */
export function checkSigV4(request: IncomingS3Request, credentials: S3Credentials): SignatureCheck {
  const query = new URL(request.url, "http://s3.invalid").searchParams;
  const authorization = header(request.headers, "authorization");
  let credential: string | null;
  let signedHeaders: string | null;
  let signature: string | null;
  let datetime: string | undefined;
  const presigned = authorization === undefined && query.has("X-Amz-Algorithm");
  if (authorization !== undefined) {
    const match = AUTHORIZATION.exec(authorization);
    if (!match) return deny("AccessDenied", "only AWS Signature Version 4 is accepted");
    [, credential, signedHeaders, signature] = match as unknown as [string, string, string, string];
    datetime = header(request.headers, "x-amz-date");
  } else if (presigned) {
    if (query.get("X-Amz-Algorithm") !== "AWS4-HMAC-SHA256") return deny("AccessDenied", "only AWS Signature Version 4 is accepted");
    credential = query.get("X-Amz-Credential");
    signedHeaders = query.get("X-Amz-SignedHeaders");
    signature = query.get("X-Amz-Signature");
    datetime = query.get("X-Amz-Date") ?? undefined;
    if (!credential || !signedHeaders || !signature || !/^[0-9a-f]{64}$/.test(signature)) return deny("AuthorizationHeaderMalformed", "the presigned URL lacks its credential, signed headers or signature");
  } else {
    return deny("AccessDenied", "anonymous requests are refused: sign them with AWS Signature Version 4");
  }

  const [accessKey, date, region, service, terminator, ...rest] = credential.split("/");
  if (accessKey !== credentials.accessKey) return deny("InvalidAccessKeyId", "the access key id does not exist");
  if (!date || !region || service !== "s3" || terminator !== "aws4_request" || rest.length > 0) return deny("AuthorizationHeaderMalformed", `malformed credential scope ${credential}`);
  if (!datetime || !/^\d{8}T\d{6}Z$/.test(datetime) || !datetime.startsWith(date)) return deny("AccessDenied", "the request has no x-amz-date matching its credential scope");
  const names = signedHeaders.split(";");
  if (!names.includes("host")) return deny("AccessDenied", "the signature must cover the host header");

  const signer = new aws4.RequestSigner(
    {
      method: request.method,
      path: presigned ? withoutSignatureParam(request.url) : request.url,
      service: "s3",
      region,
      headers: Object.fromEntries(names.map((name) => [name, header(request.headers, name) ?? ""])),
      signQuery: presigned,
      doNotModifyHeaders: true,
      // aws4 leaves a few headers (range, user-agent, ...) out of what it signs; sign exactly the client's list.
      extraHeadersToInclude: Object.fromEntries(names.map((name) => [name, true])),
    } as aws4.Request,
    { accessKeyId: credentials.accessKey, secretAccessKey: credentials.secretKey },
  );
  signer.prepareRequest();
  signer.datetime = datetime;
  const expected = Buffer.from(signer.signature());
  const provided = Buffer.from(signature);
  if (signer.signedHeaders() !== signedHeaders || expected.length !== provided.length || !timingSafeEqual(expected, provided)) {
    return deny("SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided; check your key and signing method");
  }
  return { ok: true };
}

/** An S3 error document, as S3 clients parse it. */
export function s3ErrorXml(code: string, message: string): string {
  const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${escape(code)}</Code><Message>${escape(message)}</Message></Error>`;
}
