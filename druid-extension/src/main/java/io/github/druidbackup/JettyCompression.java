package io.github.druidbackup;

import org.apache.druid.java.util.common.logger.Logger;
import org.eclipse.jetty.server.HttpOutput;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.handler.gzip.GzipHttpOutputInterceptor;

import javax.annotation.Nullable;
import javax.servlet.http.HttpServletRequest;
import java.util.Locale;
import java.util.Set;

/**
 * Keeps Jetty's gzip off the answers that must not go through it. Druid wraps each service in Jetty's GzipHandler,
 * which deflates without flushing: a server-sent event would wait in the deflater until kilobytes more came, and a
 * segment tar (LZ4 inside already) would cost the data node CPU for nothing. Jetty has no per-response switch, so
 * the compressing step is taken out of this one response's output chain. Jetty 9 specific (Druid's server); on
 * anything else it does nothing and says so once.
 */
final class JettyCompression
{
  private static final Logger log = new Logger(JettyCompression.class);
  private static final Set<String> UNCOMPRESSED = Set.of("text/event-stream", "application/x-tar", "application/octet-stream");
  private static volatile boolean warned;

  private JettyCompression()
  {
  }

  /** Whether an answer of this Content-Type is streamed as it is. */
  static boolean keepsUncompressed(@Nullable String contentType)
  {
    if (contentType == null) {
      return false;
    }
    final int semicolon = contentType.indexOf(';');
    final String mime = (semicolon < 0 ? contentType : contentType.substring(0, semicolon)).trim().toLowerCase(Locale.ROOT);
    return UNCOMPRESSED.contains(mime);
  }

  static boolean isEventStream(@Nullable String contentType)
  {
    return contentType != null && contentType.trim().toLowerCase(Locale.ROOT).startsWith("text/event-stream");
  }

  /** Call on Jetty's thread, before the answer is committed. */
  static void skip(HttpServletRequest req)
  {
    try {
      final Request base = Request.getBaseRequest(req);
      if (base == null) {
        return;
      }
      final HttpOutput out = base.getResponse().getHttpOutput();
      if (out.getInterceptor() instanceof GzipHttpOutputInterceptor gzip) {
        out.setInterceptor(gzip.getNextInterceptor());
      }
    }
    catch (LinkageError | RuntimeException e) {
      if (!warned) {
        warned = true;
        log.warn("cannot keep Jetty's compression off streamed answers (%s); events may arrive late", e.toString());
      }
    }
  }
}
