package io.github.druidbackup;

import java.net.InetAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.UnknownHostException;
import java.util.Locale;

/**
 * The sidecar's base URL ({@code druid.backup.sidecar.url}) and the URL a request to Druid's {@code /data/v1/*}
 * is forwarded to. The path is forwarded as the client sent it (still percent-encoded), so a segment id means the
 * same thing to the sidecar as to the client; only paths under {@code /data/v1} without dot segments pass.
 */
final class SidecarUrls
{
  static final String API_PREFIX = "/data/v1";

  private SidecarUrls()
  {
  }

  /** Checks {@code druid.backup.sidecar.url}: http(s), a host, no credentials, query or fragment. */
  static URI parseBase(String url)
  {
    final String key = SidecarConfig.PREFIX + ".url";
    if (url == null || url.isBlank()) {
      throw new IllegalArgumentException(key + " is empty; expected a URL such as http://127.0.0.1:8484");
    }
    final URI uri;
    try {
      uri = new URI(url.trim());
    }
    catch (URISyntaxException e) {
      throw new IllegalArgumentException(key + "=" + url + " is not a URL (" + e.getReason() + ")");
    }
    final String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
    if (!scheme.equals("http") && !scheme.equals("https")) {
      throw new IllegalArgumentException(key + "=" + url + ": only http:// and https:// are supported");
    }
    if (uri.getHost() == null) {
      throw new IllegalArgumentException(key + "=" + url + " has no host");
    }
    if (uri.getRawUserInfo() != null) {
      throw new IllegalArgumentException(
          key + "=" + url + ": credentials do not belong in the URL; set " + SidecarConfig.PREFIX + ".token"
      );
    }
    if (uri.getRawQuery() != null || uri.getRawFragment() != null) {
      throw new IllegalArgumentException(key + "=" + url + " must not have a query or fragment");
    }
    String path = uri.getRawPath() == null ? "" : uri.getRawPath();
    while (path.endsWith("/")) {
      path = path.substring(0, path.length() - 1);
    }
    try {
      return new URI(scheme + "://" + uri.getRawAuthority() + path);
    }
    catch (URISyntaxException e) {
      throw new IllegalArgumentException(key + "=" + url + " is not a URL (" + e.getReason() + ")");
    }
  }

  /** The port the sidecar listens on, as the URL says (or the scheme's default). */
  static int port(URI base)
  {
    if (base.getPort() != -1) {
      return base.getPort();
    }
    return "https".equals(base.getScheme()) ? 443 : 80;
  }

  /** Whether the URL names this host, where an autostarted sidecar would listen. */
  static boolean isLocal(URI base)
  {
    String host = base.getHost();
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    if (host.equalsIgnoreCase("localhost")) {
      return true;
    }
    // Only literal addresses: a name would need a DNS lookup, and an autostart decision must not hang on one.
    if (!host.matches("[0-9.]+|[0-9a-fA-F:]+")) {
      return false;
    }
    try {
      return InetAddress.getByName(host).isLoopbackAddress();
    }
    catch (UnknownHostException e) {
      return false;
    }
  }

  /**
   * Checks the raw (still encoded) request path: under {@code /data/v1}, no dot segments, no empty segments.
   * Jetty normalizes most of these already; the check keeps the guarantee in one visible place.
   */
  static String checkApiPath(String rawPath)
  {
    if (rawPath == null || !(rawPath.equals(API_PREFIX) || rawPath.startsWith(API_PREFIX + "/"))) {
      throw new IllegalArgumentException("path " + rawPath + " is not under " + API_PREFIX);
    }
    final String rest = rawPath.substring(API_PREFIX.length());
    final String[] segments = rest.split("/", -1);
    for (int i = 1; i < segments.length; i++) {
      final String segment = segments[i].toLowerCase(Locale.ROOT).replace("%2e", ".");
      if (segment.equals(".") || segment.equals("..")) {
        throw new IllegalArgumentException("path " + rawPath + " has a dot segment");
      }
      if (segment.isEmpty() && i < segments.length - 1) {
        throw new IllegalArgumentException("path " + rawPath + " has an empty segment");
      }
      if (segment.contains("\\") || segment.contains("%5c")) {
        throw new IllegalArgumentException("path " + rawPath + " has a backslash");
      }
    }
    return rawPath;
  }

  /** The sidecar URL of a request: base URL, the raw request path, and the raw query when there is one. */
  static URI upstream(URI base, String rawPath, String rawQuery)
  {
    final String path = checkApiPath(rawPath);
    final String query = rawQuery == null || rawQuery.isEmpty() ? "" : "?" + rawQuery;
    try {
      return new URI(base.toString() + path + query);
    }
    catch (URISyntaxException e) {
      throw new IllegalArgumentException("path " + rawPath + " cannot be forwarded: " + e.getReason());
    }
  }
}
