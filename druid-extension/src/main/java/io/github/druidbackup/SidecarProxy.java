package io.github.druidbackup;

import com.google.inject.Inject;
import org.apache.druid.guice.LazySingleton;
import org.apache.druid.java.util.common.logger.Logger;

import javax.servlet.http.HttpServletRequest;
import javax.ws.rs.core.Response;
import javax.ws.rs.core.StreamingOutput;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.nio.channels.ClosedChannelException;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Forwards a request on Druid's port to the node's sidecar and streams both bodies: the request body is read from
 * Jetty as the sidecar consumes it, the answer is copied to the client as it arrives, 64 KiB at a time, so a tar of
 * any size passes with the heap unchanged. Status codes and the sidecar's JSON errors pass through as they are.
 */
@LazySingleton
public class SidecarProxy
{
  private static final Logger log = new Logger(SidecarProxy.class);
  private static final int COPY_BUFFER = 64 * 1024;
  /** How long a request without a large body waits for the sidecar's answer to begin. */
  static final Duration ANSWER_TIMEOUT = Duration.ofSeconds(60);
  /** Bodies up to this size (JSON requests) are sent at once; larger ones may take any time to upload. */
  static final long SMALL_BODY = 1 << 20;

  private final URI base;
  private final SidecarToken token;
  private final HttpClient http;

  @Inject
  public SidecarProxy(SidecarConfig config, SidecarToken token)
  {
    this.base = config.baseUri();
    this.token = token;
    this.http = HttpClient.newBuilder()
                          .version(HttpClient.Version.HTTP_1_1)
                          .connectTimeout(config.connectTimeout())
                          .followRedirects(HttpClient.Redirect.NEVER)
                          .build();
  }

  public Response forward(String method, HttpServletRequest req)
  {
    final URI target;
    try {
      target = SidecarUrls.upstream(base, req.getRequestURI(), req.getQueryString());
    }
    catch (IllegalArgumentException e) {
      return JsonErrors.response(400, "bad_request", e.getMessage());
    }

    final HttpRequest.BodyPublisher body;
    try {
      body = requestBody(method, req);
    }
    catch (IOException e) {
      return JsonErrors.response(400, "bad_request", "cannot read the request body: " + e.getMessage());
    }
    final HttpRequest.Builder builder = HttpRequest.newBuilder(target).method(method, body);
    if (hasSmallBody(req.getContentLengthLong(), req.getHeader("Transfer-Encoding") != null)) {
      builder.timeout(ANSWER_TIMEOUT);
    }
    try {
      copyRequestHeaders(req, builder);
    }
    catch (IllegalArgumentException e) {
      return JsonErrors.response(400, "bad_request", "a request header cannot be forwarded: " + e.getMessage());
    }
    final String bearer = token.current();
    if (bearer != null) {
      builder.header("Authorization", "Bearer " + bearer);
    }

    final HttpResponse<InputStream> answer;
    try {
      answer = http.send(builder.build(), HttpResponse.BodyHandlers.ofInputStream());
    }
    catch (ConnectException | HttpConnectTimeoutException | ClosedChannelException e) {
      return unavailable(e);
    }
    catch (HttpTimeoutException e) {
      return JsonErrors.response(
          504,
          "sidecar_timeout",
          "the druid-backup sidecar at " + base + " did not begin to answer within " + ANSWER_TIMEOUT.toSeconds() + " s"
      );
    }
    catch (IOException e) {
      if (e.getCause() instanceof ConnectException) {
        return unavailable(e);
      }
      log.warn("druid-backup sidecar at %s failed on %s %s: %s", base, method, req.getRequestURI(), e.toString());
      return JsonErrors.response(
          502,
          "sidecar_failed",
          "the druid-backup sidecar at " + base + " broke off the request: " + e.getMessage()
      );
    }
    catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return unavailable(e);
    }

    if (answer.statusCode() == 401) {
      closeQuietly(answer.body());
      return JsonErrors.response(
          502,
          "sidecar_token",
          "the druid-backup sidecar at " + base + " refused this node's token: set the same "
          + SidecarConfig.PREFIX + ".token for the extension and the sidecar"
      );
    }
    return clientResponse(method, req, answer);
  }

  private Response unavailable(Exception e)
  {
    final String why = e.getMessage() == null || e.getMessage().isEmpty()
                       ? (e instanceof ConnectException ? "connection refused" : e.getClass().getSimpleName())
                       : e.getMessage();
    return JsonErrors.response(
        503,
        "sidecar_unavailable",
        "the druid-backup sidecar at " + base + " does not answer (" + why + "); start it, or check "
        + SidecarConfig.PREFIX + ".url and " + SidecarConfig.PREFIX + ".autostart in this node's runtime.properties"
    );
  }

  /**
   * Whether the sidecar's answer should begin soon: the whole request is sent at once. An upload (a segment tar)
   * is answered only once all of it went through, however long that takes, so it gets no such limit.
   */
  static boolean hasSmallBody(long contentLength, boolean chunked)
  {
    return !chunked && contentLength <= SMALL_BODY;
  }

  /**
   * The body as the sidecar reads it. The stream is taken here, on Jetty's thread: the request object Jersey injects
   * is a proxy bound to this thread, while the HTTP client reads the body from its own.
   */
  private static HttpRequest.BodyPublisher requestBody(String method, HttpServletRequest req) throws IOException
  {
    if ("GET".equals(method) || "HEAD".equals(method)) {
      return HttpRequest.BodyPublishers.noBody();
    }
    final long length = req.getContentLengthLong();
    final boolean chunked = req.getHeader("Transfer-Encoding") != null;
    if (length == 0 || (length < 0 && !chunked)) {
      return HttpRequest.BodyPublishers.noBody();
    }
    final InputStream in = req.getInputStream();
    final HttpRequest.BodyPublisher stream = HttpRequest.BodyPublishers.ofInputStream(() -> in);
    // With a known length the sidecar gets Content-Length, as the client sent it, rather than chunks.
    return length > 0 ? HttpRequest.BodyPublishers.fromPublisher(stream, length) : stream;
  }

  private static void copyRequestHeaders(HttpServletRequest req, HttpRequest.Builder builder)
  {
    final Set<String> connection = ForwardedHeaders.connectionTokens(Collections.list(req.getHeaders("Connection")));
    for (String name : Collections.list(req.getHeaderNames())) {
      if (ForwardedHeaders.toSidecar(name, connection)) {
        for (String value : Collections.list(req.getHeaders(name))) {
          builder.header(name, value);
        }
      }
    }
    builder.header("X-Forwarded-For", req.getRemoteAddr());
    builder.header("X-Forwarded-Proto", req.getScheme());
    final String host = req.getHeader("Host");
    if (host != null) {
      builder.header("X-Forwarded-Host", host);
    }
  }

  private static Response clientResponse(String method, HttpServletRequest req, HttpResponse<InputStream> answer)
  {
    final Response.ResponseBuilder out = Response.status(answer.statusCode());
    final Map<String, List<String>> headers = answer.headers().map();
    final Set<String> connection = ForwardedHeaders.connectionTokens(headers.get("connection"));
    for (Map.Entry<String, List<String>> header : headers.entrySet()) {
      if (ForwardedHeaders.toClient(header.getKey(), connection)) {
        for (String value : header.getValue()) {
          out.header(header.getKey(), value);
        }
      }
    }
    final int status = answer.statusCode();
    if ("HEAD".equals(method) || status == 204 || status == 304) {
      closeQuietly(answer.body());
      return out.build();
    }
    final String contentType = answer.headers().firstValue("content-type").orElse(null);
    if (JettyCompression.keepsUncompressed(contentType)) {
      JettyCompression.skip(req);
    }
    final boolean eventStream = JettyCompression.isEventStream(contentType);
    final InputStream body = answer.body();
    return out.entity((StreamingOutput) client -> copy(body, client, eventStream)).build();
  }

  /**
   * Copies as bytes arrive. Server-sent events are flushed whenever the sidecar has nothing more ready, so each
   * reaches the client at once; anything else goes out as Jetty's buffer fills. Closing the sidecar's stream when
   * the client goes away aborts the sidecar's side too.
   */
  private static void copy(InputStream from, OutputStream to, boolean flushEachEvent) throws IOException
  {
    try (InputStream in = from) {
      final byte[] buffer = new byte[COPY_BUFFER];
      int n;
      while ((n = in.read(buffer)) != -1) {
        to.write(buffer, 0, n);
        if (flushEachEvent && in.available() == 0) {
          to.flush();
        }
      }
      to.flush();
    }
  }

  private static void closeQuietly(InputStream in)
  {
    try {
      in.close();
    }
    catch (IOException ignored) {
      // nothing more to read from a body we drop
    }
  }
}
