package io.github.druidbackup;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;

/** Reads a data node's error answer, the sidecar's `{"error":{"code","message"}}`, or its text when it is not that. */
final class NodeErrors
{
  record NodeError(String code, String message)
  {
  }

  private NodeErrors()
  {
  }

  static NodeError parse(int status, String body)
  {
    try {
      final JsonNode error = JsonErrors.MAPPER.readTree(body).path("error");
      if (error.path("message").isTextual()) {
        return new NodeError(error.path("code").asText("node_error"), error.path("message").asText());
      }
    }
    catch (IOException e) {
      // not JSON: fall through to the text
    }
    final String text = body == null ? "" : body.strip();
    final String shortText = text.length() > 300 ? text.substring(0, 300) + "..." : text;
    return new NodeError("node_error", "HTTP " + status + (shortText.isEmpty() ? "" : ": " + shortText));
  }
}
