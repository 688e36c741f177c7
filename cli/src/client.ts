/** A failure the CLI reports as one line and a non-zero exit. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** The API answered with an error: its status and, when it sent one, its error code. */
export class ApiError extends CliError {
  override name = "ApiError";
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  url: string;
  token?: string;
}

/** The Slipway REST API, as the CLI uses it: every error becomes one readable CliError. */
export class ApiClient {
  constructor(private readonly options: ClientOptions) {
    // fetch would refuse such a header with an error that quotes it, token and all.
    if (options.token !== undefined && !/^[\x21-\x7e]+$/.test(options.token.trim())) {
      throw new CliError("the API token (SLIPWAY_TOKEN or --token) has characters an HTTP header cannot carry");
    }
  }

  get baseUrl(): string {
    return this.options.url.replace(/\/+$/, "");
  }

  async request(method: string, path: string, init: { body?: RequestInit["body"]; contentType?: string; accept?: string; lastEventId?: string; duplex?: boolean } = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    if (init.lastEventId) headers["Last-Event-ID"] = init.lastEventId;
    if (this.options.token) headers.Authorization = `Bearer ${this.options.token.trim()}`;
    if (init.contentType) headers["Content-Type"] = init.contentType;
    if (init.accept) headers.Accept = init.accept;
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, { method, headers, body: init.body, ...(init.duplex ? { duplex: "half" } : {}) } as RequestInit);
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new CliError(`cannot reach the Slipway API at ${this.baseUrl} (${reason}); set SLIPWAY_URL or --url`);
    }
    if (response.status === 401) throw new CliError(`the API refused the token (401): set SLIPWAY_TOKEN or --token`);
    if (!response.ok) {
      const text = await response.text();
      let message = text.slice(0, 300);
      let code: string | undefined;
      try {
        const parsed = JSON.parse(text) as { error?: { code: string; message: string } };
        if (parsed.error) {
          message = `${parsed.error.message} (${parsed.error.code})`;
          code = parsed.error.code;
        }
      } catch {
        // not JSON
      }
      throw new ApiError(`${method} ${path} failed with ${response.status}: ${message}`, response.status, code);
    }
    return response;
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.request(method, path, body === undefined ? {} : { body: JSON.stringify(body), contentType: "application/json" });
    return (await response.json()) as T;
  }
}
