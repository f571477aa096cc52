package io.github.druidbackup;

import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;

class RestartBackoffTest
{
  @Test
  void doublesUpToTheMaximumWhileTheSidecarKeepsDyingAndResetsAfterAHealthyRun()
  {
    final RestartBackoff b = new RestartBackoff(Duration.ofSeconds(1), Duration.ofSeconds(10), Duration.ofSeconds(60));
    final Duration quick = Duration.ofMillis(300);
    assertEquals(Duration.ofSeconds(1), b.after(quick));
    assertEquals(Duration.ofSeconds(2), b.after(quick));
    assertEquals(Duration.ofSeconds(4), b.after(quick));
    assertEquals(Duration.ofSeconds(8), b.after(quick));
    assertEquals(Duration.ofSeconds(10), b.after(quick));
    assertEquals(Duration.ofSeconds(10), b.after(quick));
    assertEquals(Duration.ofSeconds(1), b.after(Duration.ofMinutes(5)));
    assertEquals(Duration.ofSeconds(2), b.after(quick));
  }
}
