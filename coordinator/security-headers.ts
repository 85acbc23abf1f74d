// Security headers on every response (helmet). The built app (vite build: dist/) loads only its own
// module scripts, one stylesheet and a module worker, all from its origin, with no inline script or
// style, no eval and no blob: workers, so the policy allows exactly that. The donor page's PeerJS
// client talks to the signalling server on the same origin over WebSocket; WebRTC data channels are
// not governed by CSP.
import helmet from 'helmet';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';

/** ws:/wss: to this host ('self' covers them in CSP 3 browsers; older ones need them named). */
function sameHostWebSockets(req: IncomingMessage): string {
  const host = req.headers.host ?? '';
  // The Host header is the client's; only a plain host[:port] may go into the policy.
  return /^[A-Za-z0-9.\-[\]:]{1,255}$/.test(host) ? `ws://${host} wss://${host}` : "'self'";
}

export function securityHeaders(): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        workerSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        fontSrc: ["'self'"],
        connectSrc: ["'self'", sameHostWebSockets],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        // Nobody may frame the donate button (clickjacking); X-Frame-Options says the same to old browsers.
        frameAncestors: ["'none'"],
        // No upgrade-insecure-requests: coordinators on a LAN serve plain http.
      },
    },
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    xContentTypeOptions: true,
  });
}
