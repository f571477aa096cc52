package io.github.druidbackup;

/** A fault with the HTTP status and error code it answers with: `{"error":{"code","message"}}`. */
final class ApiException extends RuntimeException
{
  private static final long serialVersionUID = 1L;

  private final int status;
  private final String code;

  ApiException(int status, String code, String message)
  {
    super(message);
    this.status = status;
    this.code = code;
  }

  int status()
  {
    return status;
  }

  String code()
  {
    return code;
  }
}
