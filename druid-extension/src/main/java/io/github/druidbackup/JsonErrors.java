package io.github.druidbackup;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import javax.ws.rs.core.MediaType;
import javax.ws.rs.core.Response;
import java.nio.charset.StandardCharsets;

/** Errors in the sidecar's own shape, `{"error":{"code","message"}}`, so a client sees one format on every port. */
final class JsonErrors
{
  static final ObjectMapper MAPPER = new ObjectMapper();

  private JsonErrors()
  {
  }

  static ObjectNode body(String code, String message)
  {
    final ObjectNode root = MAPPER.createObjectNode();
    root.putObject("error").put("code", code).put("message", message);
    return root;
  }

  static Response response(int status, String code, String message)
  {
    return json(status, body(code, message));
  }

  static Response response(ApiException e)
  {
    return response(e.status(), e.code(), e.getMessage());
  }

  /** A JSON answer written as bytes, so no JAX-RS provider of Druid's re-encodes it. */
  static Response json(int status, Object value)
  {
    final byte[] bytes;
    try {
      bytes = MAPPER.writeValueAsBytes(value);
    }
    catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      return Response.status(500)
                     .type(MediaType.APPLICATION_JSON)
                     .entity("{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode the answer\"}}"
                                 .getBytes(StandardCharsets.UTF_8))
                     .build();
    }
    return Response.status(status).type(MediaType.APPLICATION_JSON).entity(bytes).build();
  }
}
