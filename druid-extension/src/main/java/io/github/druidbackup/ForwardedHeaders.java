package io.github.druidbackup;

import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Which headers cross the proxy between a Druid client and the sidecar. Hop-by-hop headers (RFC 9110 7.6.1, and
 * any the Connection header names) belong to one connection only. The client's credentials and cookies are Druid's
 * business and never reach the sidecar, which gets its own bearer token instead; the sidecar's challenge and
 * cookies never reach the client.
 */
final class ForwardedHeaders
{
  private static final Set<String> HOP_BY_HOP = Set.of(
      "connection",
      "keep-alive",
      "proxy-authenticate",
      "proxy-authorization",
      "proxy-connection",
      "te",
      "trailer",
      "transfer-encoding",
      "upgrade"
  );

  private static final Set<String> NOT_TO_SIDECAR = Set.of(
      // set by the HTTP client from the URL and the body
      "host",
      "content-length",
      "expect",
      // Druid's credentials; the sidecar has its own token
      "authorization",
      "cookie",
      // Jetty compresses towards the client when it asks; on the loopback plain bytes are cheaper
      "accept-encoding",
      // replaced by this hop's own
      "forwarded",
      "x-forwarded-for",
      "x-forwarded-host",
      "x-forwarded-proto"
  );

  private static final Set<String> NOT_TO_CLIENT = Set.of(
      // Jetty writes its own
      "date",
      "server",
      // a 401 of the sidecar is a configuration fault of this node, not a challenge to the client
      "www-authenticate",
      "set-cookie"
  );

  private ForwardedHeaders()
  {
  }

  /** The header names listed in Connection headers, lower case. */
  static Set<String> connectionTokens(List<String> connectionValues)
  {
    final Set<String> tokens = new HashSet<>();
    if (connectionValues != null) {
      for (String value : connectionValues) {
        for (String token : value.split(",")) {
          final String t = token.trim().toLowerCase(Locale.ROOT);
          if (!t.isEmpty()) {
            tokens.add(t);
          }
        }
      }
    }
    return tokens;
  }

  static boolean toSidecar(String name, Set<String> connectionTokens)
  {
    final String n = name.toLowerCase(Locale.ROOT);
    return !n.startsWith(":") && !HOP_BY_HOP.contains(n) && !NOT_TO_SIDECAR.contains(n) && !connectionTokens.contains(n);
  }

  static boolean toClient(String name, Set<String> connectionTokens)
  {
    final String n = name.toLowerCase(Locale.ROOT);
    return !n.startsWith(":") && !HOP_BY_HOP.contains(n) && !NOT_TO_CLIENT.contains(n) && !connectionTokens.contains(n);
  }
}
