package io.github.druidbackup;

import com.google.inject.Inject;
import org.apache.druid.guice.LazySingleton;

import javax.annotation.Nullable;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Properties;

/**
 * The bearer token the extension sends to the sidecar. It never comes from the client: it is
 * {@code druid.backup.sidecar.token} (a PasswordProvider, read on every use so a rotated environment variable
 * counts), else the sidecar's own {@code druid.backup.token} from the same file, else, when the extension starts
 * the sidecar itself, a random one handed to that child only.
 */
@LazySingleton
public class SidecarToken
{
  static final String SIDECAR_OWN_KEY = "druid.backup.token";

  private final SidecarConfig config;
  private final Properties properties;
  private volatile String generated;

  @Inject
  public SidecarToken(SidecarConfig config, Properties properties)
  {
    this.config = config;
    this.properties = properties;
  }

  /** Whether an operator configured a token, so a started sidecar must not get a generated one. */
  boolean isConfigured()
  {
    return configured() != null;
  }

  /** Generates the token an autostarted sidecar and this extension share, when none is configured. */
  String generate()
  {
    final byte[] bytes = new byte[32];
    new SecureRandom().nextBytes(bytes);
    generated = HexFormat.of().formatHex(bytes);
    return generated;
  }

  @Nullable
  String current()
  {
    final String configured = configured();
    return configured != null ? configured : generated;
  }

  @Nullable
  private String configured()
  {
    if (config.getToken() != null) {
      final String password = config.getToken().getPassword();
      if (password != null && !password.isEmpty()) {
        return password;
      }
    }
    final String own = properties.getProperty(SIDECAR_OWN_KEY);
    return own == null || own.isBlank() ? null : own.trim();
  }
}
