package io.github.druidbackup;

import com.google.common.util.concurrent.ListenableFuture;
import com.google.inject.Inject;
import org.apache.druid.guice.LazySingleton;
import org.apache.druid.guice.annotations.EscalatedGlobal;
import org.apache.druid.java.util.http.client.HttpClient;
import org.apache.druid.java.util.http.client.Request;
import org.apache.druid.java.util.http.client.response.StringFullResponseHandler;
import org.apache.druid.java.util.http.client.response.StringFullResponseHolder;
import org.jboss.netty.handler.codec.http.HttpMethod;
import org.joda.time.Duration;

import javax.annotation.Nullable;
import java.net.MalformedURLException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The Coordinator's calls to data nodes' {@code /data/v1/*}, through Druid's escalated HTTP client: with
 * authentication enabled they carry the cluster's internal identity, as Druid's own Coordinator-to-Historical calls.
 */
@LazySingleton
public class DataNodeClient
{
  static final Duration TIMEOUT = Duration.standardSeconds(60);

  /** A node's answer, or {@code failure} when it gave none. */
  record Answer(int status, String body, @Nullable String failure)
  {
    boolean ok()
    {
      return failure == null && status >= 200 && status < 300;
    }
  }

  private final HttpClient http;

  @Inject
  public DataNodeClient(@EscalatedGlobal HttpClient http)
  {
    this.http = http;
  }

  ListenableFuture<StringFullResponseHolder> send(String method, String url, @Nullable byte[] json)
  {
    final Request request;
    try {
      request = new Request(HttpMethod.valueOf(method), new URL(url));
    }
    catch (MalformedURLException e) {
      throw new ApiException(500, "internal", "bad data node URL " + url);
    }
    if (json != null) {
      request.setContent("application/json", json);
    }
    return http.go(request, new StringFullResponseHandler(StandardCharsets.UTF_8), TIMEOUT);
  }

  static Answer await(String node, ListenableFuture<StringFullResponseHolder> future)
  {
    try {
      final StringFullResponseHolder holder = future.get(TIMEOUT.getMillis() + 5000, TimeUnit.MILLISECONDS);
      return new Answer(holder.getStatus().getCode(), holder.getContent(), null);
    }
    catch (ExecutionException e) {
      final Throwable cause = e.getCause() == null ? e : e.getCause();
      return new Answer(0, "", "data node " + node + " does not answer (" + cause.getMessage() + ")");
    }
    catch (TimeoutException e) {
      future.cancel(true);
      return new Answer(0, "", "data node " + node + " did not answer within " + TIMEOUT.getStandardSeconds() + " s");
    }
    catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return new Answer(0, "", "interrupted while waiting for data node " + node);
    }
  }
}
