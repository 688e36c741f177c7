declare module "s3rver" {
  interface S3rverOptions {
    port?: number;
    address?: string;
    silent?: boolean;
    directory: string;
  }
  /** The part of a Koa context the middleware in front of s3rver's routes uses. */
  interface S3rverContext {
    req: import("node:http").IncomingMessage & { method: string; url: string };
    status: number;
    type: string;
    body: unknown;
  }
  export default class S3rver {
    constructor(options: S3rverOptions);
    /** Koa's middleware stack (s3rver is a Koa app), composed when the server starts. */
    middleware: Array<(ctx: S3rverContext, next: () => Promise<void>) => Promise<void>>;
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
  }
}
