package io.github.druidbackup;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SidecarProxyTest
{
  @Test
  void onlyRequestsSentAtOnceWaitALimitedTimeForTheAnswer()
  {
    assertTrue(SidecarProxy.hasSmallBody(-1, false), "no body");
    assertTrue(SidecarProxy.hasSmallBody(0, false));
    assertTrue(SidecarProxy.hasSmallBody(300, false), "a JSON request");
    assertTrue(SidecarProxy.hasSmallBody(SidecarProxy.SMALL_BODY, false));
    assertFalse(SidecarProxy.hasSmallBody(SidecarProxy.SMALL_BODY + 1, false), "a segment upload");
    assertFalse(SidecarProxy.hasSmallBody(-1, true), "a chunked upload of unknown size");
  }
}
